"""Test DICOMs made with pydicom: greyscale radiographs of every kind radfeat reads, and the kinds it refuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# transfer syntaxes the tests can encode here, with the encoder each needs (None: always available)
ENCODABLE = {
    "rle": ("1.2.840.10008.1.2.5", None),  # RLE Lossless: pydicom's own encoder
    "jpegls": ("1.2.840.10008.1.2.4.80", "jpeg_ls"),  # JPEG-LS Lossless: pyjpegls
    "j2k": ("1.2.840.10008.1.2.4.90", "openjpeg"),  # JPEG 2000 Lossless: pylibjpeg-openjpeg
}
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"


def radiograph(rows: int, cols: int, bits: int, seed: int = 0) -> np.ndarray:
    """A smooth synthetic radiograph using the full ``bits`` range, as uint16 (uint8 for 8 bits)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols]
    img = np.sin(x / (cols / 5.0) + seed) * np.cos(y / (rows / 3.0)) + 0.15 * rng.standard_normal((rows, cols))
    img = (img - img.min()) / (img.max() - img.min())
    top = 2 ** bits - 1
    out = np.rint(img * top).astype(np.uint8 if bits <= 8 else np.uint16)
    out[0, 0], out[-1, -1] = 0, top
    return out


def encoder_available(kind: str) -> bool:
    import importlib.util

    need = ENCODABLE[kind][1]
    return need is None or importlib.util.find_spec(need) is not None


def make_dicom(path: Path, pixels: np.ndarray | None = None, *, bits: int = 12, photometric: str = "MONOCHROME2",
               compress: str | None = None, view: str | None = "PA", patient: str = "P001",
               study_date: str | None = "20240131", study_time: str | None = "101530",
               acquisition_datetime: str | None = None, window: tuple[float, float] | None = None,
               frames: int = 1, rgb: bool = False, no_pixels: bool = False, shape: tuple[int, int] = (90, 70),
               seed: int = 0) -> Path:
    """Write one DICOM Part 10 file (with preamble) and return its path."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    if pixels is None:
        pixels = radiograph(*shape, bits=bits, seed=seed)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray, for presentation
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.PatientID = patient
    ds.PatientName = "Test^Patient"
    if study_date is not None:
        ds.StudyDate = study_date
    if study_time is not None:
        ds.StudyTime = study_time
    if acquisition_datetime is not None:
        ds.AcquisitionDateTime = acquisition_datetime
    if view is not None:
        ds.ViewPosition = view
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if not no_pixels:
        _set_pixels(ds, pixels, bits, photometric, frames, rgb)
    if compress:
        uid, plugin = ENCODABLE[compress]
        ds.compress(uid, encoding_plugin={"jpeg_ls": "pyjpegls", "openjpeg": "pylibjpeg"}.get(plugin, ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _set_pixels(ds, pixels: np.ndarray, bits: int, photometric: str, frames: int, rgb: bool) -> None:
    allocated = 8 if bits <= 8 else 16
    if rgb:
        pixels = np.repeat(pixels.astype(np.uint8)[:, :, None], 3, axis=2)
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        allocated = bits = 8
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    if frames > 1:
        pixels = np.stack([pixels] * frames)
        ds.NumberOfFrames = frames
    ds.Rows, ds.Columns = pixels.shape[-3 if rgb else -2], pixels.shape[-2 if rgb else -1]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = allocated, bits, bits - 1, 0
    ds.PixelData = pixels.astype(np.uint8 if allocated == 8 else np.uint16).tobytes()


def set_transfer_syntax(path: Path, uid: str) -> None:
    """Relabel a file's transfer syntax (for the 'no decoder' case), keeping its bytes otherwise."""
    import pydicom
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = uid
    ds.PixelData = encapsulate([b"\xff\x0a" + bytes(30)])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(path, enforce_file_format=True)
