"""DICOM files: recognising them, decoding their pixels as TorchXRayVision does, reading header tags.

Pixels follow ``torchxrayvision.utils.read_xray_dcm`` with its default arguments exactly: the stored
values of ``ds.pixel_array`` (no modality rescale), full scale ``2**BitsStored - 1``, MONOCHROME1
inverted as ``full scale - value``, and — only with ``voi_lut=True`` (``--dicom-voi-lut``) — pydicom's
``apply_voi_lut`` first.  :func:`read_dicom` returns ``(pixels, full scale)`` so the shared
normalisation (:func:`radfeat.pipeline.preprocess.normalize`, the same float32 formula as
TorchXRayVision's) turns them into the same [-1024, 1024] image.

A DICOM is untrusted input: pydicom only parses it (nothing in it is executed, nothing in it names a
file radfeat writes), the declared Rows × Columns × frames is checked against the pixel limit before
any pixel is decoded, and every file radfeat cannot use raises :class:`ImageError` with the reason
(multi-frame, colour, no pixel data, a transfer syntax no installed decoder handles, …).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from radfeat.errors import ImageError

DICOM_SUFFIXES = (".dcm", ".dicom")
PREAMBLE = 128  # the DICOM magic "DICM" follows a 128-byte preamble
MAGIC = b"DICM"
# Tag keywords radfeat reads for --views and for master-table dates and patients.
VIEW_TAG = "ViewPosition"
DATE_TAGS = ("AcquisitionDateTime", "StudyDate", "StudyTime")
PATIENT_TAG = "PatientID"
# Value representations that cannot be a table cell (sequences and binary data).
_NOT_A_CELL = {"SQ", "OB", "OW", "OF", "OD", "OL", "OV", "UN"}
_NUMBERED_SUFFIX = re.compile(r"\.\d+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_dicom_magic(path: str | Path) -> bool:
    """True when the file has ``DICM`` at byte 128 (the DICOM Part 10 preamble)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(PREAMBLE + len(MAGIC))
    except OSError:
        return False
    return head[PREAMBLE:] == MAGIC


def sniffable(name: str) -> bool:
    """Names whose content must be sniffed: no extension, or a numeric one (``1.2.840.….17``, ``IM_0001.3``)."""
    return "." not in name or bool(_NUMBERED_SUFFIX.search(name))


def is_dicom(path: str | Path, name: str | None = None) -> bool:
    """A ``.dcm``/``.dicom`` file (any case), or an extension-less / UID-named file with the DICOM preamble.

    ``name``: the file's own name when ``path`` is another way to reach it (``/proc/self/fd/N``)."""
    name = name or os.path.basename(path)
    if name.lower().endswith(DICOM_SUFFIXES):
        return True
    return sniffable(name) and has_dicom_magic(path)


# -- pixels ------------------------------------------------------------------------------------------

def read_dicom(path: str | Path, *, voi_lut: bool = False, max_pixels: int) -> tuple[np.ndarray, float]:
    """``(pixels, full scale)`` of a single-frame greyscale DICOM, as ``read_xray_dcm`` computes them."""
    ds = _open(path)
    _check_image(ds, max_pixels)
    full_scale = 2 ** int(ds.BitsStored) - 1
    data = _decode(ds)
    if voi_lut:
        from pydicom.pixels import apply_voi_lut

        try:
            data = apply_voi_lut(data, ds, index=0)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ImageError(f"cannot apply the DICOM VOI LUT ({exc})") from None
    if ds.PhotometricInterpretation == "MONOCHROME1":
        try:
            data = full_scale - data
        except OverflowError:
            raise ImageError(f"cannot invert MONOCHROME1 pixels of type {data.dtype} "
                             f"(BitsStored {ds.BitsStored})") from None
    if data.size and data.max() > full_scale:
        raise ImageError(f"pixel value {data.max()} is above {full_scale}, the largest value BitsStored "
                         f"{ds.BitsStored} allows")
    return data, float(full_scale)


def _open(path: str | Path) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        # large elements (the pixel data) are read only when decoded, after the size checks
        return pydicom.dcmread(path, force=True, defer_size="256 KB")
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except (InvalidDicomError, EOFError) as exc:
        raise ImageError(f"not a valid DICOM file ({exc})") from None
    except Exception as exc:  # pydicom raises many kinds on a malformed file
        raise ImageError(f"not a valid DICOM file ({type(exc).__name__}: {exc})") from None


def _check_image(ds: Any, max_pixels: int) -> None:
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        what = getattr(getattr(ds, "SOPClassUID", None), "name", "") or "no image"
        raise ImageError(f"DICOM without pixel data ({what})")
    if "PixelData" not in ds:
        raise ImageError("floating-point DICOM pixel data is not supported")
    for kw in ("Rows", "Columns", "BitsStored", "PhotometricInterpretation"):
        if ds.get(kw) in (None, ""):
            raise ImageError(f"DICOM image without {kw}")
    frames = int(ds.get("NumberOfFrames") or 1)
    if frames > 1:
        raise ImageError(f"multi-frame DICOM ({frames} frames): only single images are supported")
    pi = str(ds.PhotometricInterpretation)
    if pi not in ("MONOCHROME1", "MONOCHROME2") or int(ds.get("SamplesPerPixel") or 1) != 1:
        raise ImageError(f"colour DICOM (PhotometricInterpretation {pi}): only MONOCHROME1 and MONOCHROME2 "
                         "radiographs are supported")
    rows, cols = int(ds.Rows), int(ds.Columns)
    if rows < 1 or cols < 1:
        raise ImageError(f"DICOM image of {rows} × {cols} pixels")
    from radfeat.pipeline.images import check_pixels  # (images imports this module)

    check_pixels(cols, rows * frames, max_pixels)  # the one pixel limit (--max-pixels), before any decoding
    if not 1 <= int(ds.BitsStored) <= 16:
        raise ImageError(f"unsupported BitsStored {ds.BitsStored} (1 to 16 are supported)")
    _check_decoder(ds)


def transfer_syntax(ds: Any) -> Any:
    from pydicom.uid import ImplicitVRLittleEndian

    meta = getattr(ds, "file_meta", None)
    return getattr(meta, "TransferSyntaxUID", None) or ImplicitVRLittleEndian


def _check_decoder(ds: Any) -> None:
    from pydicom.pixels import get_decoder

    uid = transfer_syntax(ds)
    label = f"{uid.name} ({uid})" if uid.name != uid else str(uid)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise ImageError(f"unsupported DICOM transfer syntax {label}: no decoder exists for it") from None
    if not decoder.is_available:
        raise ImageError(f"unsupported DICOM transfer syntax {label}: no installed decoder plugin handles it")


def _decode(ds: Any) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = ds.pixel_array
    except MemoryError:
        raise ImageError("not enough memory to decode this DICOM image") from None
    except Exception as exc:  # decoder plugins raise their own kinds on corrupt data
        raise ImageError(f"cannot decode DICOM pixel data ({type(exc).__name__}: {exc})") from None
    if data.ndim != 2:
        raise ImageError(f"unexpected DICOM pixel array shape {data.shape}")
    return data


# -- header tags ---------------------------------------------------------------------------------------

def tag_problem(keyword: object) -> str | None:
    """Why ``keyword`` cannot be a DICOM tag column (None when it can)."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    if not isinstance(keyword, str) or not keyword:
        return "DICOM tags must be keywords such as PatientID or StudyDate"
    tag = tag_for_keyword(keyword)
    if tag is None:
        return f"Unknown DICOM tag keyword '{keyword}' (keywords are case-sensitive, e.g. PatientID, StudyDate)"
    if dictionary_VR(tag) in _NOT_A_CELL or keyword == "PixelData":
        return f"DICOM tag '{keyword}' holds a sequence or binary data and cannot be a table column"
    return None


def cell(value: Any) -> str:
    """A header value as one table cell: multi-valued joined with a backslash, control characters removed."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        text = "\\".join(cell(v) for v in value)
    else:
        text = str(value)
    return _CONTROL.sub(" ", text).strip()


def read_tags(path: str | Path, keywords: Iterable[str]) -> dict[str, str]:
    """The chosen header values of one DICOM (``""`` where absent), reading no pixel data."""
    import pydicom

    keywords = list(keywords)
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True, specific_tags=keywords)
    except Exception as exc:  # a header that cannot be read is the image's problem, reported later
        raise ImageError(f"cannot read the DICOM header ({type(exc).__name__}: {exc})") from None
    return {kw: cell(ds.get(kw)) for kw in keywords}


def header_datetime(tags: dict[str, str]) -> str:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]`` from AcquisitionDateTime, else StudyDate + StudyTime (``""`` if none).

    A UTC offset in the DT value is dropped: the time is kept as the modality recorded it.
    """
    dt = tags.get("AcquisitionDateTime", "")
    if len(dt) >= 8 and dt[:8].isdigit():
        date, time = dt[:8], re.split(r"[+-]", dt[8:])[0]
    else:
        date, time = tags.get("StudyDate", ""), tags.get("StudyTime", "")
    if len(date) != 8 or not date.isdigit():
        return ""
    out = f"{date[:4]}-{date[4:6]}-{date[6:8]}"
    digits, _, frac = time.replace(":", "").partition(".")
    if not digits.isdigit():
        return out
    digits = (digits + "0000")[:6]
    out += f" {digits[:2]}:{digits[2:4]}:{digits[4:6]}"
    frac = frac.rstrip("0")
    return out + (f".{frac}" if frac.isdigit() else "")
