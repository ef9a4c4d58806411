"""Reading image files into one 2-D channel, as TorchXRayVision's pipeline sees them.

The reference reads with ``skimage.io.imread`` (imageio's Pillow plugin), keeps the
first channel of colour images and scales by 255 (8-bit).  We decode with Pillow
directly, which gives the same pixels, and extend the scaling to 16-bit images.
DICOM files (:func:`radfeat.pipeline.dicom.is_dicom`) are one more file kind: pydicom
decodes them as ``torchxrayvision.utils.read_xray_dcm`` does (:mod:`radfeat.pipeline.dicom`).
Every failure becomes an :class:`ImageError` whose message says what is wrong.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 40000 * 40000  # large radiographs are fine; pixel bombs beyond this are refused (every file kind)
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


class ImageError(ValueError):
    """An image that cannot be used; the message is the reason shown to the user."""


def read_gray(path: Path, *, dicom_voi_lut: bool = False) -> tuple[np.ndarray, float]:
    """Return ``(pixels, maxval)``: the first channel of the image and its full-scale value.

    ``dicom_voi_lut`` applies a DICOM's VOI LUT / window (``read_xray_dcm(voi_lut=True)``).
    """
    from radfeat.pipeline import dicom

    if dicom.is_dicom(path):
        return dicom.read_dicom(path, voi_lut=dicom_voi_lut, max_pixels=MAX_PIXELS)
    try:
        data = Path(path).read_bytes()
    except PermissionError:
        raise ImageError("permission denied") from None
    except OSError as exc:
        raise ImageError(f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            img.load()
    except UnidentifiedImageError:
        raise ImageError("not an image (unrecognised file content)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("image too large (possible decompression bomb)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"corrupt or truncated image ({exc})") from None
    return _first_channel(img)


def _first_channel(img: Image.Image) -> tuple[np.ndarray, float]:
    mode = img.mode
    if mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGBA" if mode == "PA" or "transparency" in img.info else "RGB")
        mode = img.mode
    if mode == "1":
        raise ImageError("unsupported image mode '1' (black-and-white bitmap)")
    arr = np.asarray(img)
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise ImageError(f"unexpected image shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr, 255.0
    if arr.dtype.kind in "ui" and arr.size and int(arr.min()) >= 0 and int(arr.max()) <= 65535:
        return arr, 65535.0
    raise ImageError(f"unsupported pixel format (mode {mode}, {arr.dtype})")
