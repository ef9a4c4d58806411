"""Measures of anatomical masks (NumPy only): area, bounding box, centroid; cardiothoracic ratio.

Masks are the model's ``S × S`` view of the image: the centre square crop (``xrv`` preprocessing)
or the whole image squeezed to a square (``medomics``).  :class:`View` maps them back:

* ``area`` — the structure's fraction of the model's view (pixels in the mask / S²);
* ``bbox_x0, bbox_y0, bbox_x1, bbox_y1`` — the box's edges in the original image's pixel units
  (origin at the image's top-left corner, x to the right, y down; pixel ``i`` covers ``[i, i + 1)``);
* ``centroid_x, centroid_y`` — the mean pixel centre, in the same units.

An empty mask has area 0 and NaN box and centroid.  Derived measures:

* ``ctr`` — cardiothoracic ratio: the heart's maximal horizontal width (its mask's leftmost to rightmost
  column, + 1) over the thorax's maximal horizontal width (over rows, the leftmost to rightmost pixel of
  the union of both lung masks in that row, + 1); NaN without heart or lungs.  Both widths are
  horizontal distances in the same rows of the view, so the ratio does not depend on the view's scale;
* ``lung_area_ratio`` — left lung area / right lung area (NaN when the right lung is empty).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

PER_STRUCTURE = ("area", "bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1", "centroid_x", "centroid_y")
DERIVED = ("ctr", "lung_area_ratio")


def slug(label: str) -> str:
    """``Left Hilus Pulmonis`` → ``left_hilus_pulmonis`` (column-safe)."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "structure"


@dataclass(frozen=True)
class View:
    """Where a ``mask_h × mask_w`` mask of the model's view lies in the original image."""

    off_x: float = 0.0
    off_y: float = 0.0
    scale_x: float = 1.0
    scale_y: float = 1.0

    @classmethod
    def of(cls, height: int, width: int, mask: tuple[int, int], mode: str) -> View:
        mask_h, mask_w = mask
        if mode == "xrv":  # TorchXRayVision's centre crop (radfeat.pipeline.preprocess.center_crop)
            side = min(height, width)
            return cls(width // 2 - side // 2, height // 2 - side // 2, side / mask_w, side / mask_h)
        return cls(0.0, 0.0, width / mask_w, height / mask_h)


def structure_measures(mask: np.ndarray, view: View) -> list[float]:
    """The :data:`PER_STRUCTURE` values of one ``S × S`` boolean mask."""
    count = int(mask.sum())
    area = count / float(mask.shape[0] * mask.shape[1])
    if count == 0:
        return [area] + [float("nan")] * 6
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    ys, xs = np.nonzero(mask)
    return [
        area,
        view.off_x + cols[0] * view.scale_x, view.off_y + rows[0] * view.scale_y,
        view.off_x + (cols[-1] + 1) * view.scale_x, view.off_y + (rows[-1] + 1) * view.scale_y,
        view.off_x + (xs.mean() + 0.5) * view.scale_x, view.off_y + (ys.mean() + 0.5) * view.scale_y,
    ]


def heart_width(heart: np.ndarray) -> int:
    cols = np.flatnonzero(heart.any(axis=0))
    return int(cols[-1] - cols[0] + 1) if len(cols) else 0


def thorax_width(left_lung: np.ndarray, right_lung: np.ndarray) -> int:
    """Widest row of the two lungs together (leftmost to rightmost lung pixel of the row)."""
    lungs = left_lung | right_lung
    present = lungs.any(axis=1)
    if not present.any():
        return 0
    w = lungs.shape[1]
    first = np.argmax(lungs, axis=1)
    last = w - 1 - np.argmax(lungs[:, ::-1], axis=1)
    return int(np.max(np.where(present, last - first + 1, 0)))


def derived_measures(masks: np.ndarray, labels: list[str]) -> list[float]:
    """:data:`DERIVED` from the masks of one image (``C × S × S``); NaN where a structure is not modelled."""
    index = {slug(name): i for i, name in enumerate(labels)}
    nan = float("nan")
    ctr = ratio = nan
    if {"heart", "left_lung", "right_lung"} <= set(index):
        hw = heart_width(masks[index["heart"]])
        tw = thorax_width(masks[index["left_lung"]], masks[index["right_lung"]])
        ctr = hw / tw if hw and tw else nan
    if {"left_lung", "right_lung"} <= set(index):
        right = int(masks[index["right_lung"]].sum())
        ratio = int(masks[index["left_lung"]].sum()) / right if right else nan
    return [ctr, ratio]


def measure_columns(prefix: str, labels: list[str]) -> list[str]:
    cols = [f"{prefix}_anatomy_{slug(name)}_{m}" for name in labels for m in PER_STRUCTURE]
    return cols + [f"{prefix}_anatomy_{m}" for m in DERIVED]


def measures(masks: np.ndarray, labels: list[str], view: View) -> np.ndarray:
    """One row of :func:`measure_columns` values for the masks of one image."""
    row: list[float] = []
    for mask in masks:
        row.extend(structure_measures(mask, view))
    row.extend(derived_measures(masks, labels))
    return np.asarray(row, dtype=np.float64)


# One colour per structure for the overlay PNG (RGB), cycled when a model has more classes.
PALETTE = np.array([
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (220, 190, 255),
    (170, 110, 40), (128, 0, 0)], dtype=np.float32)


def overlay(image: np.ndarray, masks: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The grey image (``S × S`` uint8) with each structure tinted in its colour (later ones on top)."""
    out = np.repeat(image[:, :, None], 3, axis=2).astype(np.float32)
    for i, mask in enumerate(masks):
        colour = PALETTE[i % len(PALETTE)]
        out[mask] = (1 - alpha) * out[mask] + alpha * colour
    return np.rint(out).astype(np.uint8)
