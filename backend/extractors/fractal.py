"""``fractal``: gliding-box lacunarity, fractal dimension and percolation texture features.

Columns ``<prefix>_fractal_<feature>`` in the order of :func:`radfeat.extractors.fractal_math.feature_names`
(``lac_r3 … lac_r<R>``, ``fd_r…``, ``perc_clusters_r…``, ``perc_percolating_r…``, ``perc_largest_r…``,
then the curve descriptors), computed by :func:`radfeat.extractors.fractal_math.fractal_features` on the original
image read as RGB (a grey image is replicated into three equal channels; 16-bit images are scaled to
8 bits).  ``max_box`` is the largest box size R (odd, ≥ 3).  No model, no preprocessing: every
image is one batch so progress and resume move image by image, and each image uses all threads.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from radfeat.extractors import fractal_math as fractal
from radfeat.extractors.base import BatchResult, Extractor
from radfeat.extractors.declarations.fractal import FRACTAL
from radfeat.extractors.fractal_math import FractalWarning, feature_names, fractal_features
from radfeat.pipeline.discovery import ImageRef
from radfeat.pipeline.images import read_rgb


class FractalExtractor(Extractor):
    kind = FRACTAL.name
    float64 = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_size = 1
        self.names = feature_names(self.opts.max_box)
        self.provider = "CPU (NumPy/SciPy)"

    def describe(self) -> str:
        return f"Preparing fractal features (box sizes 3..{self.opts.max_box})"

    def columns(self) -> list[str]:
        return [f"{self.opts.prefix}_fractal_{name}" for name in self.names]

    def fingerprint(self) -> dict[str, Any]:
        return {"type": self.kind, "max_box": self.opts.max_box, "prefix": self.opts.prefix,
                "features": len(self.names)}

    def start_line(self) -> str:
        return f"fractal features, box sizes 3..{self.opts.max_box}, {self.threads} thread(s) per image"

    def load(self, ref: ImageRef) -> np.ndarray:
        return read_rgb(ref.path, self.opts.max_pixels, dicom_voi_lut=self.opts.dicom_voi_lut)

    def run(self, items: Sequence[np.ndarray], refs: Sequence[ImageRef]) -> BatchResult:
        result = BatchResult(blocks=[])
        rows = []
        for img, ref in zip(items, refs, strict=True):
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", FractalWarning)
                    values = fractal_features(img, self.opts.max_box, workers=self.threads)
            except (ValueError, TypeError, MemoryError) as exc:
                result.failed.append((ref, f"fractal features failed: {exc}"))
                continue
            for w in caught:
                if issubclass(w.category, FractalWarning):
                    self.log(f"{ref.key}: {w.message}")
            rows.append([values[name] for name in self.names])
            result.refs.append(ref)
        if rows:
            result.blocks = [np.asarray(rows, dtype=np.float64)]
        return result

    def provenance(self) -> dict[str, Any]:
        return {"weights": None, "fractal": {"max_box": self.opts.max_box, "features": len(self.names),
                                             "percolation_threshold": fractal.PERCOLATION_THRESHOLD,
                                             "definition": "radfeat.extractors.fractal_math (gliding box, chessboard colour "
                                                           "distance, 4-connected clusters)"}}
