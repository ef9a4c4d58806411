"""Fractal texture features of colour images: gliding-box lacunarity, "fractal dimension" and percolation.

The features follow the definitions of the public repository leonardohcl/Image-Feature-Extraction-Tools
(``Fractal.py``: ``GlidingBox``; ``Curve.py``: curve descriptors), re-derived here and computed with
whole-array operations instead of per-pixel Python loops (its pure-Python version is O(n^5)).

Definitions, for every odd box size ``r = 3, 5, ..., R`` (``p = r // 2``):

* A box is the ``r x r`` window centred on a pixel ``c`` that lies entirely inside the image, so
  there are ``(H - r + 1) * (W - r + 1)`` boxes (no padding).
* A pixel ``q`` of the box is *occupied* when its colour lies within the chessboard (L-infinity)
  distance ``r`` of the centre's colour: ``max over R,G,B of |I(q) - I(c)| <= r``.  The centre is
  always occupied.  Note that the colour tolerance is the box size itself.
* The box *mass* ``m`` is its number of occupied pixels (``1 <= m <= r*r``); ``P(m, r)`` is the
  fraction of boxes with mass ``m``.
* Lacunarity: ``lac(r) = (M2 - M1**2) / M1**2`` with ``M1 = sum m P(m, r)``, ``M2 = sum m**2 P(m, r)``.
* "Fractal dimension" at ``r`` as the reference reports it: ``fd(r) = sum P(m, r) / m``, the expected
  reciprocal mass (in Voss's probability method it is proportional to the number of boxes of size
  ``r`` needed to cover the image).  The reference fits no log-log slope, so none is given here.
* Percolation, on each box's occupied map with 4-connectivity (clusters never leave the box):

  - ``perc_clusters_r{r}``: mean number of clusters per box (the reference's ``p(r)``);
  - ``perc_percolating_r{r}``: fraction of boxes whose occupied fraction ``m / r**2`` is at least
    the site-percolation threshold 0.59275 (the reference's ``g(r)``, "percolation");
  - ``perc_largest_r{r}``: mean over boxes of (largest cluster size) / ``r**2`` (``h(r)``).

* Curve descriptors of the lacunarity curve and of each percolation curve, with ``x = r``:
  ``area = (x[-1] - x[0]) / (2 n) * sum_i (y[i] + y[i+1])`` (the reference's trapezoid, which
  divides by ``2 n`` rather than ``2 (n - 1)``), ``skewness`` (population skewness, 0 for a flat
  curve), ``area_ratio`` (area of the first ``n // 2`` points over area of the rest) and ``max``.

Undefined values are NaN and a :class:`FractalWarning` says why: box sizes larger than the image,
and descriptors of a curve that contains NaN or whose ratio has a zero denominator.

Speed: the colour distances of every centre to its whole ``R x R`` neighbourhood are computed once
per block of rows (shared by all ``r``); occupied maps and masses come from thresholding them.
Clusters come from one connected-component labelling call (OpenCV, or ``scipy.ndimage.label``) per
block and ``r`` over all its boxes stacked vertically with an empty row between boxes, so clusters
cannot join across boxes; labels are numbered in raster order, so each box owns a contiguous label
range (checked; any other numbering takes a general path), giving cluster counts from per-box
maxima and largest clusters from one ``bincount``.  Boxes that are full or hold only their centre
have one cluster and are not labelled.  Blocks run on a thread pool (numpy and the labellers release
the GIL); all accumulators are integers, so results do not depend on the number of threads.
"""

# Over 400 lines on purpose: the module docstring is the features' definition, kept beside the code.
from __future__ import annotations

import math
import os
import statistics
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "PERCOLATION_THRESHOLD",
    "FractalWarning",
    "box_sizes",
    "curve_descriptors",
    "feature_names",
    "fractal_features",
]

PERCOLATION_THRESHOLD = 0.59275
"""Site-percolation threshold of the square lattice; a box percolates when ``m / r**2`` reaches it."""

DESCRIPTORS = ("area", "skewness", "area_ratio", "max")
_PER_R = ("lac", "fd")
_PERC = ("perc_clusters", "perc_percolating", "perc_largest")

# Labels are int32, four bytes per voxel: keep one ndimage.label call around this many voxels.
_LABEL_VOXELS = 4_000_000
# Distance block (uint8, rows x width x K x K) per task.
_BLOCK_BYTES = 24_000_000


class FractalWarning(RuntimeWarning):
    """Some fractal features are NaN; the message says which and why."""


def box_sizes(max_box: int) -> list[int]:
    """The box sizes used for ``max_box``: odd ``r`` from 3 up to ``max_box`` (an even bound is excluded)."""
    if isinstance(max_box, bool) or not isinstance(max_box, (int, np.integer)):
        raise TypeError(f"max_box must be an integer, got {type(max_box).__name__}")
    if max_box < 3:
        raise ValueError(f"max_box must be at least 3 (the smallest box is 3x3), got {max_box}")
    return list(range(3, int(max_box) + 1, 2))


def feature_names(max_box: int = 41, *, percolation: bool = True) -> list[str]:
    """Column names, in the order :func:`fractal_features` returns them."""
    sizes = box_sizes(max_box)
    families = _PER_R + (_PERC if percolation else ())
    names = [f"{fam}_r{r}" for fam in families for r in sizes]
    curves = ("lac",) + (_PERC if percolation else ())
    names += [f"{curve}_{d}" for curve in curves for d in DESCRIPTORS]
    return names


def curve_descriptors(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Area, skewness, area ratio and maximum of a feature curve ``y(x)`` (see the module docstring).

    Returns NaN for a descriptor that is undefined (a NaN in ``y``, fewer than two points for the
    area ratio, or a zero denominator); the caller reports why.
    """
    xs = [float(v) for v in x]
    ys = [float(v) for v in y]
    if len(xs) != len(ys):
        raise ValueError("x and y must have the same length")
    nan = float("nan")
    if not ys or any(math.isnan(v) for v in ys):
        return dict.fromkeys(DESCRIPTORS, nan)
    split = len(xs) // 2
    denominator = _curve_area(xs[split:], ys[split:]) if split else 0.0
    ratio = _curve_area(xs[:split], ys[:split]) / denominator if denominator != 0.0 else nan
    return {
        "area": _curve_area(xs, ys),
        "skewness": _skewness(ys),
        "area_ratio": ratio,
        "max": max(ys),
    }


def _curve_area(x: list[float], y: list[float]) -> float:
    n = len(x)
    pairs = math.fsum(y[i] + y[i + 1] for i in range(n - 1))
    return (x[-1] - x[0]) / (2 * n) * pairs


def _skewness(y: list[float]) -> float:
    n = len(y)
    mean = statistics.mean(y)  # exact for a flat curve, so its spread is exactly zero
    m2 = math.fsum((v - mean) ** 2 for v in y) / n
    if m2 == 0.0:
        return 0.0
    m3 = math.fsum((v - mean) ** 3 for v in y) / n
    return m3 / math.sqrt(m2**3)


# --------------------------------------------------------------------------------------------
# Box statistics


@dataclass
class _Sums:
    """Integer accumulators for one box size (exact, so independent of how the work is split)."""

    mass_hist: np.ndarray  # int64, index m = 0 .. r*r
    clusters: int = 0
    largest: int = 0
    boxes: int = 0

    def add(self, other: _Sums) -> None:
        self.mass_hist += other.mass_hist
        self.clusters += other.clusters
        self.largest += other.largest
        self.boxes += other.boxes


def _as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be an (H, W, 3) RGB array (or (H, W) grey), got shape {arr.shape}; "
                         "use radfeat.pipeline.images.read_rgb() to read files")
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "ui" and arr.dtype != bool:
            raise TypeError(f"image must hold 8-bit integers (uint8), got {arr.dtype}")
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 255):
            raise ValueError("image values must lie in 0..255")
        arr = arr.astype(np.uint8)
    return arr


def _distance_block(planes: np.ndarray, pad: int, y0: int, y1: int, width: int) -> np.ndarray:
    """Chessboard colour distance of centres ``(y, x)``, ``y0 <= y < y1``, ``1 <= x <= width - 2``, to every
    pixel of their ``K x K`` neighbourhood (``K = 2 pad + 1``), as uint8 ``(rows, width - 2, K, K)``.

    ``planes`` is the image as int16 ``(C, H + 2 pad, W + 2 pad)``, edge-padded; padded values only reach
    neighbourhood cells that no box of a valid size uses.
    """
    k = 2 * pad + 1
    rows, cols = y1 - y0, width - 2
    out = np.empty((rows, cols, k, k), dtype=np.uint8)
    centre = planes[:, pad + y0 : pad + y1, pad + 1 : pad + 1 + cols]
    diff = np.empty((planes.shape[0], rows, cols), dtype=np.int16)
    row = np.empty((k, rows, cols), dtype=np.uint8)
    for a in range(k):
        for b in range(k):
            np.subtract(planes[:, y0 + a : y1 + a, 1 + b : 1 + b + cols], centre, out=diff)
            np.abs(diff, out=diff)
            if diff.shape[0] == 1:
                row[b] = diff[0]
            else:
                row[b] = np.maximum(np.maximum(diff[0], diff[1]), diff[2])
        out[:, :, a, :] = row.transpose(1, 2, 0)
    return out


def _block_sums(planes: np.ndarray, pad: int, shape: tuple[int, int], sizes: list[int],
                y0: int, y1: int, percolation: bool, labeller: str) -> dict[int, _Sums]:
    """Accumulators for the centres in rows ``y0 <= y < y1`` (all box sizes)."""
    height, width = shape
    dist = _distance_block(planes, pad, y0, y1, width)
    result: dict[int, _Sums] = {}
    for r in sizes:
        p = r // 2
        sums = _Sums(mass_hist=np.zeros(r * r + 1, dtype=np.int64))
        result[r] = sums
        ya, yb = max(y0, p), min(y1, height - p)
        ncols = width - 2 * p
        if ya >= yb or ncols <= 0:
            continue
        step = max(1, _LABEL_VOXELS // (ncols * r * (r + 1)))
        for ys in range(ya, yb, step):
            ye = min(ys + step, yb)
            sub = dist[ys - y0 : ye - y0, p - 1 : p - 1 + ncols, pad - p : pad + p + 1, pad - p : pad + p + 1]
            # Boxes stacked vertically, each followed by an empty row so that clusters cannot join
            # across boxes: (n, r + 1, r), box rows first.
            boxes = np.empty((ye - ys, ncols, r + 1, r), dtype=np.uint8)
            boxes[:, :, r, :] = 0
            np.less_equal(sub, r, out=boxes[:, :, :r, :], casting="unsafe")
            _add_boxes(sums, boxes.reshape(-1, r + 1, r), r, percolation, labeller)
    return result


def _add_boxes(sums: _Sums, boxes: np.ndarray, r: int, percolation: bool, labeller: str) -> None:
    """Add ``boxes`` (uint8 0/1, ``(n, r + 1, r)`` with an empty last row) to the accumulators."""
    n = boxes.shape[0]
    area = r * r
    mass = np.count_nonzero(boxes.reshape(n, -1), axis=1)
    sums.mass_hist += np.bincount(mass, minlength=area + 1)
    sums.boxes += n
    if not percolation:
        return
    # A full box, or one holding only its centre, is a single cluster of size `mass`.
    need = (mass > 1) & (mass < area)
    n_need = int(np.count_nonzero(need))
    sums.clusters += n - n_need
    sums.largest += int(mass.sum() - mass[need].sum())
    if n_need == 0:
        return
    if n_need < n:
        boxes, mass = boxes[need], mass[need]
    counts, largest = _cluster_stats(boxes, mass, labeller)
    sums.clusters += int(counts.sum())
    sums.largest += int(largest.sum())


def _label(image: np.ndarray, labeller: str) -> tuple[np.ndarray, int]:
    """4-connected labels (int32, 0 = background, 1..n) of a 2-D uint8 0/1 image."""
    if labeller == "opencv":
        import cv2

        n, labels = cv2.connectedComponents(image, connectivity=4, ltype=cv2.CV_32S)
        return labels, int(n) - 1
    labels, n = ndimage.label(image)  # the default structure is 4-connectivity
    return labels, int(n)


def _cluster_stats(boxes: np.ndarray, mass: np.ndarray, labeller: str) -> tuple[np.ndarray, np.ndarray]:
    """Cluster count and largest cluster size of each box in ``boxes`` (``(k, r + 1, r)``, masses ``mass``)."""
    k = boxes.shape[0]
    labels, total = _label(boxes.reshape(-1, boxes.shape[2]), labeller)
    flat = labels.reshape(k, -1)
    # Both labellers number clusters in raster order of their first pixel, and the boxes are stacked
    # in raster order, so box i should own exactly the labels lo[i]..hi[i], lo[i] = hi[i-1] + 1.
    # Checked here (cheaply); any other numbering takes the general path.
    hi = flat.max(axis=1).astype(np.int64)
    lo = (flat.view(np.uint32) - np.uint32(1)).min(axis=1).astype(np.int64) + 1  # background wraps to max
    if not (lo[0] == 1 and hi[-1] == total and np.array_equal(lo[1:], hi[:-1] + 1)):
        return _cluster_stats_general(flat, total, k)
    counts = hi - lo + 1
    largest = mass.astype(np.int64)  # right for single-cluster boxes
    multi = counts > 1
    n_multi = int(np.count_nonzero(multi))
    if n_multi:
        # Sizes of the clusters of multi-cluster boxes only (others stay 0: they are not needed, and
        # each box's maximum is taken over its own label range).
        picked = flat if 2 * n_multi > k else flat[multi]
        sizes = np.bincount(picked.ravel(), minlength=total + 1)
        sizes[0] = 0
        largest[multi] = np.maximum.reduceat(sizes, lo)[multi]
    return counts, largest


def _cluster_stats_general(flat: np.ndarray, total: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cluster counts and largest sizes for any label numbering (each cluster lies in one box)."""
    sizes = np.bincount(flat.ravel(), minlength=total + 1)
    owner = np.zeros(total + 1, dtype=np.int64)
    owner[flat] = np.arange(k)[:, None]
    owner, sizes = owner[1:], sizes[1:]
    counts = np.bincount(owner, minlength=k)
    largest = np.zeros(k, dtype=np.int64)
    np.maximum.at(largest, owner, sizes)
    return counts, largest


def _labeller() -> str:
    """OpenCV's labelling makes a whole run about 1.3x faster than scipy's; both give the same clusters."""
    try:
        import cv2  # noqa: F401
    except Exception:  # pragma: no cover - opencv is a dependency, but may fail to load
        return "scipy"
    return "opencv"


def _default_workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 16))


def _box_sums(img: np.ndarray, sizes: list[int], percolation: bool, workers: int,
              labeller: str) -> dict[int, _Sums]:
    height, width = img.shape[:2]
    pad = sizes[-1] // 2
    grey = bool(np.array_equal(img[:, :, 0], img[:, :, 1]) and np.array_equal(img[:, :, 0], img[:, :, 2]))
    chans = img[:, :, :1] if grey else img  # equal channels: the max over channels is any one of them
    planes = np.pad(np.moveaxis(chans, 2, 0).astype(np.int16), ((0, 0), (pad, pad), (pad, pad)), mode="edge")
    planes = np.ascontiguousarray(planes)

    k = 2 * pad + 1
    centre_rows = height - 2  # centres of the 3x3 boxes: 1 <= y <= H - 2
    rows = max(1, _BLOCK_BYTES // ((width - 2) * k * k))
    rows = max(1, min(rows, math.ceil(centre_rows / (3 * workers))))
    blocks = [(y, min(y + rows, height - 1)) for y in range(1, height - 1, rows)]

    def run(block: tuple[int, int]) -> dict[int, _Sums]:
        return _block_sums(planes, pad, (height, width), sizes, block[0], block[1], percolation, labeller)

    if workers == 1 or len(blocks) == 1:
        parts = [run(b) for b in blocks]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(run, blocks))
    total = {r: _Sums(mass_hist=np.zeros(r * r + 1, dtype=np.int64)) for r in sizes}
    for part in parts:
        for r in sizes:
            total[r].add(part[r])
    return total


def _per_r_values(r: int, sums: _Sums, percolation: bool) -> dict[str, float]:
    boxes = sums.boxes
    prob = sums.mass_hist / boxes
    m = np.arange(r * r + 1, dtype=np.float64)
    first = float(np.dot(m, prob))
    second = float(np.dot(m * m, prob))
    out = {
        "lac": (second - first**2) / first**2,
        "fd": float(np.dot(prob[1:], 1.0 / m[1:])),
    }
    if percolation:
        area = float(r * r)
        percolating = int(sums.mass_hist[np.flatnonzero(m / area >= PERCOLATION_THRESHOLD)].sum())
        out["perc_clusters"] = sums.clusters / boxes
        out["perc_percolating"] = percolating / boxes
        out["perc_largest"] = sums.largest / area / boxes
    return out


def fractal_features(image: np.ndarray, max_box: int = 41, *, percolation: bool = True,
                     workers: int | None = None) -> dict[str, float]:
    """Gliding-box lacunarity, fractal dimension and percolation features of an RGB image.

    Args:
        image: ``(H, W, 3)`` uint8 RGB array (an ``(H, W)`` grey array is taken as R = G = B).
        max_box: largest box size ``R``; sizes ``r = 3, 5, ..., R`` are used (even ``R``: up to ``R - 1``).
        percolation: also compute the percolation features (most of the run time).
        workers: threads to use; default: the CPUs available (at most 16).  Results do not depend on it.

    The work grows as ``H * W * R**3``: a 512x512 image with ``R = 41`` takes about 8 s on two cores
    (2 s without percolation); downsample large radiographs first if that is too slow.

    Returns:
        ``{name: value}`` in the order of :func:`feature_names`: ``lac_r{r}``, ``fd_r{r}``,
        ``perc_clusters_r{r}``, ``perc_percolating_r{r}``, ``perc_largest_r{r}`` for every ``r``, then
        ``{curve}_{area,skewness,area_ratio,max}`` for the lacunarity and percolation curves.  Box
        sizes that do not fit in the image give NaN, as do descriptors of curves containing NaN;
        a :class:`FractalWarning` explains each case.
    """
    img = _as_rgb_uint8(image)
    sizes = box_sizes(max_box)
    if workers is None:
        workers = _default_workers()
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    height, width = img.shape[:2]
    fitting = [r for r in sizes if r <= min(height, width)]
    nan = float("nan")
    if len(fitting) < len(sizes):
        too_big = [r for r in sizes if r not in fitting]
        span = f"r={too_big[0]}" if len(too_big) == 1 else f"r={too_big[0]}..{too_big[-1]}"
        warnings.warn(f"image is {height}x{width} pixels, smaller than box size {span}: "
                      f"features for {span} and the curve descriptors are NaN", FractalWarning, stacklevel=2)

    values: dict[int, dict[str, float]] = {}
    if fitting:
        sums = _box_sums(img, fitting, percolation, int(workers), _labeller())
        values = {r: _per_r_values(r, sums[r], percolation) for r in fitting}

    families = _PER_R + (_PERC if percolation else ())
    out: dict[str, float] = {}
    for fam in families:
        for r in sizes:
            out[f"{fam}_r{r}"] = values[r][fam] if r in values else nan
    for curve in ("lac",) + (_PERC if percolation else ()):
        ys = [out[f"{curve}_r{r}"] for r in sizes]
        desc = curve_descriptors(sizes, ys)
        undefined = [d for d in DESCRIPTORS if math.isnan(desc[d])]
        if undefined and len(fitting) == len(sizes):
            why = ("fewer than two box sizes" if len(sizes) < 2
                   else "the second half of the curve has zero area")
            warnings.warn(f"{curve} curve descriptor(s) {', '.join(undefined)} are NaN: {why}",
                          FractalWarning, stacklevel=2)
        for d in DESCRIPTORS:
            out[f"{curve}_{d}"] = desc[d]
    return out
