"""Reading image files: one family of functions for every extraction type and the page's thumbnails.

:func:`open_image` decodes a file that Pillow reads (JPEG, PNG, TIFF, BMP …); DICOM files
(:func:`radfeat.pipeline.dicom.is_dicom`) are the other file kind, decoded by pydicom as
``torchxrayvision.utils.read_xray_dcm`` does (:mod:`radfeat.pipeline.dicom`).  The readers below
dispatch on the kind; every failure is an :class:`ImageError` whose message says what is wrong.

* :func:`read_gray` — the first channel and its full-scale value (255 or 65535), as TorchXRayVision's
  pipeline reads images (``skimage.io.imread`` keeps the first channel of colour images; we decode
  with Pillow directly, which gives the same pixels, and extend the scaling to 16-bit images);
* :func:`read_rgb` — ``H × W × 3`` uint8 (grey replicated, alpha dropped, 16-bit and DICOM scaled to 8 bits);
* :func:`to_uint8` — 8-bit pixels from a deeper channel by its full-scale value;
* :func:`center_square` — TorchXRayVision's centre square crop, of grey or colour pixels;
* :func:`thumbnail_png` — the page's preview, with the same 8-bit scaling.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from radfeat.errors import ImageError
from radfeat.pipeline import dicom

__all__ = ["MAX_PIXELS", "ImageError", "center_square", "first_channel", "open_image", "read_gray", "read_rgb",
           "thumbnail_png", "to_uint8"]

MAX_PIXELS = 40000 * 40000  # large radiographs are fine; pixel bombs beyond this are refused (every file kind)
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_INT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def open_image(path: Path) -> Image.Image:
    """The decoded image (Pillow)."""
    return _open(path, None)[0]


def _open(path: Path, draft: tuple[int, int] | None) -> tuple[Image.Image, tuple[int, int]]:
    """The decoded image and its full size; ``draft``: a JPEG may be decoded at a reduced scale."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ImageError("cannot read file (file not found)") from None
    except PermissionError:
        raise ImageError("permission denied") from None
    except OSError as exc:
        raise ImageError(f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ImageError("empty file (0 bytes)")
    return _decode_pillow(data, draft)


def _decode_pillow(data: bytes, draft: tuple[int, int] | None) -> tuple[Image.Image, tuple[int, int]]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            size = img.size
            if draft is not None:
                img.draft("L", draft)
            img.load()
    except UnidentifiedImageError:
        raise ImageError("not an image (unrecognised file content)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("image too large (possible decompression bomb)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"corrupt or truncated image ({exc})") from None
    return img, size


def read_gray(path: Path, *, dicom_voi_lut: bool = False) -> tuple[np.ndarray, float]:
    """Return ``(pixels, maxval)``: the first channel of the image and its full-scale value.

    ``dicom_voi_lut`` applies a DICOM's VOI LUT / window (``read_xray_dcm(voi_lut=True)``).
    """
    if dicom.is_dicom(path):
        return dicom.read_dicom(path, voi_lut=dicom_voi_lut, max_pixels=MAX_PIXELS)
    return first_channel(open_image(path))


def first_channel(img: Image.Image) -> tuple[np.ndarray, float]:
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


def to_uint8(pixels: np.ndarray, maxval: float, dtype: type = np.float32) -> np.ndarray:
    """8-bit pixels: ``rint(pixels × 255 / maxval)``, computed in ``dtype`` (8-bit input is returned as is).

    The float32 product is what the ONNX and saliency types have always used; fractal features keep their
    float64 definition (``dtype=np.float64``), which rounds a few 16-bit values differently.  Values are
    clipped to 0..255 (a DICOM's VOI LUT may leave the stored range).
    """
    if maxval == 255.0 and pixels.dtype == np.uint8:
        return pixels
    return np.clip(np.rint(pixels.astype(dtype) * dtype(255.0 / maxval)), 0, 255).astype(np.uint8)


def read_rgb(path: Path, *, dicom_voi_lut: bool = False) -> np.ndarray:
    """Read an image file into an ``(H, W, 3)`` uint8 RGB array.

    8-bit images are converted with Pillow's ``convert("RGB")`` (grey levels are copied to the three
    channels, an alpha channel is dropped).  16-bit grey images (common for radiographs) are scaled to
    8 bits by their full-scale value 65535 first (in float64), because Pillow's own conversion would clip them;
    DICOM images likewise by their full scale ``2**BitsStored - 1``.
    """
    if dicom.is_dicom(path):
        pixels, maxval = dicom.read_dicom(path, voi_lut=dicom_voi_lut, max_pixels=MAX_PIXELS)
        return np.repeat(to_uint8(pixels, maxval, np.float64)[:, :, None], 3, axis=2)
    img = open_image(path)
    if img.mode in _INT_MODES:
        arr = np.asarray(img)
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 65535):
            raise ImageError(f"unsupported pixel range for mode {img.mode}")
        grey = to_uint8(arr, 65535.0, np.float64)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode == "F":
        raise ImageError("unsupported pixel format (32-bit floating point image)")
    return np.asarray(img.convert("RGB")).copy()


def center_square(arr: np.ndarray) -> np.ndarray:
    """TorchXRayVision's ``XRayCenterCrop``: the centred square of a grey (H × W) or colour (H × W × C) image."""
    y, x = arr.shape[:2]
    side = min(y, x)
    sy, sx = y // 2 - side // 2, x // 2 - side // 2
    return arr[sy:sy + side, sx:sx + side]


@dataclass
class Thumbnail:
    png: bytes
    width: int
    height: int
    original_width: int
    original_height: int


def thumbnail_png(path: Path, size: int, name: str | None = None) -> Thumbnail:
    """A PNG preview at most ``size`` pixels wide and high, scaled to 8 bits by the full-scale value as the
    extraction reads it (a DICOM with its VOI LUT / window applied, as it is meant to be viewed).

    ``name``: the file's own name when ``path`` reaches it another way (the backend's checked descriptor)."""
    if dicom.is_dicom(path, name):
        pixels, maxval = dicom.read_dicom(path, voi_lut=True, max_pixels=MAX_PIXELS)
        height, width = pixels.shape
        small = Image.fromarray(to_uint8(pixels, maxval), "L")
        return _png(small, size, width, height)
    img, (width, height) = _open(path, (size, size))  # a JPEG is decoded at a reduced scale
    if img.mode in _INT_MODES:
        pixels, maxval = first_channel(img)
        small = Image.fromarray(to_uint8(pixels, maxval), "L")
    elif img.mode == "F":
        raise ImageError("unsupported pixel format (32-bit floating point image)")
    else:
        small = img.convert("L" if img.mode in ("L", "LA", "1", "P") else "RGB")
    return _png(small, size, width, height)


def _png(small: Image.Image, size: int, width: int, height: int) -> Thumbnail:
    small.thumbnail((size, size))
    buf = io.BytesIO()
    small.save(buf, format="PNG")
    return Thumbnail(buf.getvalue(), small.width, small.height, width, height)
