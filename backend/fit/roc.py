"""The ROC plot of a fit, drawn with Pillow (no plotting library, nothing cached under $HOME).

Pillow's built-in font has no en dash or minus sign: labels are kept to ASCII.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]
SIZE, LEFT, TOP, RIGHT, BOTTOM = 560, 70, 40, 24, 64


def roc_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates of the out-of-fold scores."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, score)
    return fpr, tpr


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow built without FreeType
        return ImageFont.load_default()


def draw_roc(curves: list[tuple[str, np.ndarray, np.ndarray]], title: str, dest: Path | IO[bytes]) -> None:
    """``curves``: (legend, fpr, tpr) per model; writes a PNG to ``dest`` (the caller opens it with the safe writer)."""
    img = Image.new("RGB", (SIZE, SIZE), "white")
    d = ImageDraw.Draw(img)
    w, h = SIZE - LEFT - RIGHT, SIZE - TOP - BOTTOM
    small, big = _font(12), _font(15)

    def xy(fx: float, fy: float) -> tuple[float, float]:
        return LEFT + fx * w, TOP + (1 - fy) * h

    for t in np.linspace(0, 1, 6):
        d.line([xy(t, 0), xy(t, 1)], fill=(232, 232, 232))
        d.line([xy(0, t), xy(1, t)], fill=(232, 232, 232))
        d.text((xy(t, 0)[0], TOP + h + 6), f"{t:.1f}", fill="black", font=small, anchor="mt")
        d.text((LEFT - 6, xy(0, t)[1]), f"{t:.1f}", fill="black", font=small, anchor="rm")
    for i in range(20):  # dashed chance line
        a, b = i / 20, (i + 0.5) / 20
        d.line([xy(a, a), xy(b, b)], fill=(150, 150, 150), width=1)
    d.rectangle([LEFT, TOP, LEFT + w, TOP + h], outline="black")
    for k, (_, fpr, tpr) in enumerate(curves):
        d.line([xy(float(a), float(b)) for a, b in zip(fpr, tpr, strict=True)],
               fill=COLOURS[k % len(COLOURS)], width=3, joint="curve")
    for k, (legend, _, _) in enumerate(curves):
        y0 = TOP + h - 18 - 18 * (len(curves) - 1 - k)
        d.line([(LEFT + w * 0.38, y0), (LEFT + w * 0.38 + 22, y0)], fill=COLOURS[k % len(COLOURS)], width=3)
        d.text((LEFT + w * 0.38 + 28, y0), legend.replace("–", " to "), fill="black", font=small, anchor="lm")
    d.text((LEFT + w / 2, 14), title, fill="black", font=big, anchor="mt")
    d.text((LEFT + w / 2, SIZE - 20), "1 - specificity (false positive rate)", fill="black", font=small, anchor="mm")
    label = Image.new("RGB", (h, 18), "white")
    ImageDraw.Draw(label).text((h / 2, 9), "sensitivity (true positive rate)", fill="black", font=small, anchor="mm")
    img.paste(label.rotate(90, expand=True), (10, TOP))
    img.save(dest, format="PNG")
