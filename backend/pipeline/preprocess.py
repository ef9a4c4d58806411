"""Preprocessing: pixels to the model's input, in two named, exact modes.

``xrv`` (default) is TorchXRayVision's pipeline: normalise to [-1024, 1024],
centre square crop, then ``skimage.transform.resize`` to 224 (Gaussian
anti-aliasing when shrinking, bilinear interpolation, constant zero padding,
range preserved).  Both steps are linear and separable, so for each input size
we build, once, the sparse matrix ``W = Zoom @ Gauss`` per axis and resize an
image as ``W @ img @ W.T`` — the same numbers as skimage, ~30× faster.

``medomics`` is what the MEDomics app does today: normalise, keep the whole
image (no crop) and ``cv2.resize(..., INTER_AREA)`` to 224×224.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.sparse as sp
from radfeat.pipeline.images import center_square

TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter default, as skimage uses it


def normalize(img: np.ndarray, maxval: float) -> np.ndarray:
    """TorchXRayVision's scaling to [-1024, 1024], same float32 operations in the same order."""
    return (2 * (img.astype(np.float32) / np.float32(maxval)) - 1.0) * 1024


@functools.lru_cache(maxsize=4)
def _normalize_lut(maxval: float) -> np.ndarray:
    """``normalize`` of the 256 possible 8-bit values (the same float32 operations)."""
    return normalize(np.arange(256), maxval)


def normalize_pixels(pixels: np.ndarray, maxval: float) -> np.ndarray:
    """``normalize`` with identical values, faster: a lookup table for 8-bit images, in place otherwise."""
    import cv2

    if pixels.dtype == np.uint8:
        return cv2.LUT(pixels, _normalize_lut(float(maxval)))
    out = pixels.astype(np.float32)  # the same four float32 operations, without temporaries
    np.divide(out, np.float32(maxval), out=out)
    np.multiply(out, 2, out=out)
    np.subtract(out, 1.0, out=out)
    np.multiply(out, 1024, out=out)
    return out


center_crop = center_square  # TorchXRayVision's ``XRayCenterCrop`` (the one definition is in images.py)


def _gaussian_matrix(n: int, sigma: float) -> sp.csr_matrix:
    """``scipy.ndimage.gaussian_filter1d`` with mode 'constant' (cval 0) as an n×n matrix."""
    radius = int(TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 / (sigma * sigma) * x.astype(np.float64) ** 2)
    kernel /= kernel.sum()
    rows, cols, vals = [], [], []
    for off, w in zip(x, kernel, strict=True):
        idx = np.arange(n)
        src = idx + off
        ok = (src >= 0) & (src < n)
        rows.append(idx[ok])
        cols.append(src[ok])
        vals.append(np.full(int(ok.sum()), w))
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def _zoom_matrix(n: int, m: int) -> sp.csr_matrix:
    """``scipy.ndimage.zoom(order=1, mode='grid-constant', grid_mode=True)`` from n to m samples."""
    scale = n / m
    i = np.arange(m)
    c = (i + 0.5) * scale - 0.5
    lo = np.floor(c).astype(np.int64)
    frac = c - lo
    rows, cols, vals = [], [], []
    for src, w in ((lo, 1.0 - frac), (lo + 1, frac)):
        ok = (src >= 0) & (src < n) & (w != 0)
        rows.append(i[ok])
        cols.append(src[ok])
        vals.append(w[ok])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(m, n))


@functools.lru_cache(maxsize=64)
def resize_operator(n: int, m: int) -> sp.csr_matrix:
    """The m×n matrix that resizes one axis exactly like ``skimage.transform.resize``."""
    op = _zoom_matrix(n, m)
    if n > m:  # anti-aliasing: sigma = (factor - 1) / 2
        sigma = max(0.0, (n / m - 1.0) / 2.0)
        if sigma > 0:
            op = op @ _gaussian_matrix(n, sigma)
    return sp.csr_matrix(op, dtype=np.float32)


def skimage_resize(img: np.ndarray, size: int, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Resize a 2-D float32 image to ``size``×``size`` as skimage does, via the cached operators.

    ``lo``/``hi`` are the input's min and max if already known.  skimage clips the result
    to the input range, widened to include the zero padding only when that zero is
    outside the input range but inside the output range (``_clip_warp_output``).
    """
    wy = resize_operator(img.shape[0], size)
    wx = resize_operator(img.shape[1], size)
    tmp = wy @ img  # (size, W)
    out = np.ascontiguousarray((wx @ tmp.T).T, dtype=np.float32)
    lo = float(img.min()) if lo is None else lo
    hi = float(img.max()) if hi is None else hi
    if not lo <= 0.0 <= hi and out.min() <= 0.0 <= out.max():
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    return np.clip(out, np.float32(lo), np.float32(hi), out=out)


class XrvPreprocess:
    """TorchXRayVision: normalise, centre crop, skimage-exact resize."""

    name = "xrv"

    def __init__(self, size: int = 224) -> None:
        self.size = size

    def __call__(self, pixels: np.ndarray, maxval: float) -> np.ndarray:
        crop = center_crop(pixels)  # crop before normalising: identical result, less work
        # normalising is monotonic, so the range of the normalised crop is that of its pixels
        lo, hi = normalize(np.array([crop.min(), crop.max()]), maxval)
        return skimage_resize(normalize_pixels(crop, maxval), self.size, float(lo), float(hi))


class MedomicsPreprocess:
    """MEDomics app: normalise, whole image, ``cv2.resize`` INTER_AREA."""

    name = "medomics"

    def __init__(self, size: int = 224) -> None:
        self.size = size

    def __call__(self, pixels: np.ndarray, maxval: float) -> np.ndarray:
        import cv2

        return cv2.resize(normalize_pixels(pixels, maxval), (self.size, self.size), interpolation=cv2.INTER_AREA)


PREPROCESSORS = {"xrv": XrvPreprocess, "medomics": MedomicsPreprocess}


def make(mode: str, size: int = 224) -> XrvPreprocess | MedomicsPreprocess:
    return PREPROCESSORS[mode](size)


__all__ = ["normalize", "center_crop", "resize_operator", "skimage_resize", "make", "PREPROCESSORS"]
