"""``densenet``: TorchXRayVision DenseNet-121 dense features and predictions (the MEDomics table).

Columns ``<prefix>_densefeatures_0..1023`` (``model.features2(x)``) and ``<prefix>_predictions_0..17``
(``model(x)``), through the exported ONNX graph; see :mod:`radfeat.weights.export`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from radfeat.extractors.base import BatchResult, Extractor
from radfeat.extractors.declarations.densenet import DENSENET
from radfeat.output.columns import feature_columns
from radfeat.pipeline.discovery import ImageRef
from radfeat.pipeline.images import read_gray
from radfeat.pipeline.preprocess import make as make_preprocess
from radfeat.weights.export import export
from radfeat.weights.quantize import quantized
from radfeat.weights.readiness import ensure_weights
from radfeat.weights.session import EXPORT_OUTPUTS, OnnxSession


class DenseNetExtractor(Extractor):
    kind = DENSENET.name

    def prepare(self) -> None:
        opts, wset = self.opts, self.wset
        ensure_weights(wset, self.log)
        self.info = export(wset, log=self.log)
        model_path = self.info.path
        if opts.precision == "int8":
            model_path = quantized(self.info.path, log=self.log)
        self.session = OnnxSession(model_path, opts.device, self.threads, log=self.log)
        self.provider = self.session.provider
        self.pre = make_preprocess(opts.preprocess, wset.input_size)
        self.want_dense = "dense" in opts.features
        self.want_pred = "predictions" in opts.features

    def columns(self) -> list[str]:
        cols: list[str] = []
        for fam in ("dense", "predictions"):
            if fam in self.opts.features:
                n = self.info.num_features if fam == "dense" else self.info.num_classes
                cols += feature_columns(self.opts.prefix, fam, n)
        return cols

    def fingerprint(self) -> dict[str, Any]:
        opts = self.opts
        return {"weights": self.wset.name, "weights_sha256": self.info.weights_sha256, "preprocess": opts.preprocess,
                "precision": opts.precision, "features": sorted(opts.features), "prefix": opts.prefix}

    def start_line(self) -> str:
        return (f"model {self.wset.name} on {self.provider}, {self.opts.preprocess} preprocessing, "
                f"batch {self.batch_size}")

    def load(self, ref: ImageRef) -> np.ndarray:
        pixels, maxval = read_gray(ref.path, self.opts.max_pixels, dicom_voi_lut=self.opts.dicom_voi_lut)
        return self.pre(pixels, maxval)

    def run(self, items: Sequence[np.ndarray], refs: Sequence[ImageRef]) -> BatchResult:
        x = np.stack(items)[:, None]
        preds, feats = self.session.run(x, EXPORT_OUTPUTS)
        blocks = ([feats] if self.want_dense else []) + ([preds] if self.want_pred else [])
        return BatchResult(list(refs), blocks=blocks)

    def provenance(self) -> dict[str, Any]:
        return densenet_provenance(self.wset, self.info)


def densenet_provenance(wset: Any, info: Any) -> dict[str, Any]:
    """The weights and export record of a DenseNet run (shared with saliency maps)."""
    thr = wset.thresholds_array()
    return {
        "weights": {"name": wset.name, "sha256": info.weights_sha256, "source": wset.source, "labels": list(wset.labels),
                    "op_threshs": thr and [None if t != t else t for t in thr]},
        "export": {"onnx": Path(info.path).name, "max_pred_diff": info.max_pred_diff,
                   "max_feat_diff": info.max_feat_diff},
    }
