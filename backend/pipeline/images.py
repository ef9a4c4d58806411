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

Two guards run around every decode, so that one file can neither exhaust memory nor pass for an image it is not:

* **Pixel limit** — the header's width × height is checked against ``max_pixels`` (:func:`check_pixels`,
  default :data:`DEFAULT_MAX_PIXELS`, ``--max-pixels``) *before* any pixel memory is allocated, so a 1 kB
  file declaring 39000 × 39000 costs nothing.  The DICOM reader calls :func:`check_pixels` with its header values.
* **Complete data** — truncated pixel data is an error, never a zero-filled image.  Pillow's
  ``LOAD_TRUNCATED_IMAGES`` stays off (a cut JPEG or PNG raises), and because Pillow accepts a PNG whose
  compressed stream ends cleanly before the last row (zero-filling the rest), a PNG whose last rows are
  blank has its stream length checked against its declared size (:func:`png_rows_missing`).
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError
from radfeat.errors import ImageError
from radfeat.pipeline import dicom
from radfeat.pipeline.limits import DEFAULT_MAX_PIXELS, MAX_MAX_PIXELS

__all__ = ["DEFAULT_MAX_PIXELS", "MAX_PIXELS", "ImageError", "center_square", "check_pixels", "first_channel",
           "open_image", "read_gray", "read_rgb", "thumbnail_png", "to_uint8"]

MAX_PIXELS = DEFAULT_MAX_PIXELS  # the default limit, for readers that take no option (thumbnails)
# Pillow's own backstop, checked inside Image.open: above the highest --max-pixels, so check_pixels speaks first
Image.MAX_IMAGE_PIXELS = 4 * MAX_MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False  # never zero-fill a truncated image

_INT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def check_pixels(width: int, height: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse an image whose declared size exceeds ``max_pixels`` (call it before decoding)."""
    if width * height > max_pixels:
        raise ImageError(f"image too large: {width} × {height} = {width * height / 1e6:.1f} megapixels, above the "
                         f"limit of {max_pixels / 1e6:g} (raise it with --max-pixels if the image is genuine)")


def open_image(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The decoded image (Pillow), after the pixel-limit check; complete or an :class:`ImageError`."""
    return _open(path, None, max_pixels)[0]


def _open(path: Path, draft: tuple[int, int] | None,
          max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, tuple[int, int]]:
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
    img, size = _decode_pillow(data, draft, max_pixels)
    if img.format == "PNG" and _last_rows_blank(img):
        missing = png_rows_missing(data)
        if missing:
            raise ImageError(f"truncated image: the pixel data ends {missing}")
    return img, size


def _decode_pillow(data: bytes, draft: tuple[int, int] | None,
                   max_pixels: int) -> tuple[Image.Image, tuple[int, int]]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            size = img.size
            check_pixels(*size, max_pixels)
            if draft is not None:
                img.draft("L", draft)
            img.load()
    except UnidentifiedImageError:
        raise ImageError("not an image (unrecognised file content)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image too large: its header declares more than {Image.MAX_IMAGE_PIXELS / 1e6:g} "
                         "megapixels (possible decompression bomb)") from None
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        raise ImageError(f"corrupt or truncated image ({exc})") from None
    return img, size


_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _last_rows_blank(img: Image.Image) -> bool:
    """Whether one of the last two rows is all zero: what undecoded rows of a short PNG stream look like.

    Pillow's pixel buffer starts zeroed, so a complete decode with a non-zero last row (and, for
    interlaced files, the row before it) needs no second look; only the rest pay for the stream check.
    """
    width, height = img.size
    tail = np.asarray(img.crop((0, max(0, height - 2), width, height)))
    tail = tail.reshape(tail.shape[0], -1)
    return not all(row.any() for row in tail)


def _png_raw_size(width: int, height: int, bits: int, color: int, interlace: int) -> int:
    """Bytes of the filtered scanlines a complete PNG stream inflates to."""
    px_bits = bits * _PNG_CHANNELS.get(color, 1)

    def rows(w: int, h: int) -> int:
        return 0 if w <= 0 or h <= 0 else h * (1 + (w * px_bits + 7) // 8)

    if not interlace:
        return rows(width, height)
    return sum(rows((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy) for x0, y0, dx, dy in _ADAM7)


def png_rows_missing(data: bytes) -> str | None:
    """``None`` when the PNG's image data inflates to its declared size, else how short it falls."""
    try:
        width, height, bits, color, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
        expected = _png_raw_size(width, height, bits, color, interlace)
        inflate = zlib.decompressobj()
        got, pos = 0, 8
        while pos + 8 <= len(data) and got <= expected:
            length, kind = struct.unpack(">I4s", data[pos:pos + 8])
            if kind == b"IDAT":
                chunk = data[pos + 8:pos + 8 + length]
                while chunk and got <= expected:
                    got += len(inflate.decompress(chunk, 1 << 20))
                    chunk = inflate.unconsumed_tail
            elif kind == b"IEND":
                break
            pos += 12 + length
    except (struct.error, zlib.error):
        return None  # Pillow decoded it; leave malformed-but-decodable files to Pillow's judgement
    if got >= expected:
        return None
    row = max(1, expected // max(height, 1))
    return f"after about {got // row} of {height} rows"


def read_gray(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, *,
              dicom_voi_lut: bool = False) -> tuple[np.ndarray, float]:
    """Return ``(pixels, maxval)``: the first channel of the image and its full-scale value.

    ``dicom_voi_lut`` applies a DICOM's VOI LUT / window (``read_xray_dcm(voi_lut=True)``).
    """
    if dicom.is_dicom(path):
        return dicom.read_dicom(path, voi_lut=dicom_voi_lut, max_pixels=max_pixels)
    return first_channel(open_image(path, max_pixels))


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


def read_rgb(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, *, dicom_voi_lut: bool = False) -> np.ndarray:
    """Read an image file into an ``(H, W, 3)`` uint8 RGB array.

    8-bit images are converted with Pillow's ``convert("RGB")`` (grey levels are copied to the three
    channels, an alpha channel is dropped).  16-bit grey images (common for radiographs) are scaled to
    8 bits by their full-scale value 65535 first (in float64), because Pillow's own conversion would clip them;
    DICOM images likewise by their full scale ``2**BitsStored - 1``.
    """
    if dicom.is_dicom(path):
        pixels, maxval = dicom.read_dicom(path, voi_lut=dicom_voi_lut, max_pixels=max_pixels)
        return np.repeat(to_uint8(pixels, maxval, np.float64)[:, :, None], 3, axis=2)
    img = open_image(path, max_pixels)
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
