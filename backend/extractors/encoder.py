"""``encoder``: TorchXRayVision's other encoders, through the same export-to-ONNX-on-first-use path.

* ResNet (``resnet50-res512-all``, 512 × 512): ``<prefix>_resnetfeatures_0..2047`` (``model.features(x)``)
  and ``<prefix>_predictions_0..17`` (``model(x)``, calibrated like the DenseNets).
* ResNet autoencoder (``101-elastic``, 224 × 224): ``<prefix>_latent_0..4607``, ``model.encode(x)``
  (512 × 3 × 3) flattened in C order (channel, row, column).  It has no predictions; asking for
  both families writes the latent code alone.

Preprocessing is the DenseNets' (``xrv`` or ``medomics``) at the model's own input size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from radfeat.extractors.base import BatchResult
from radfeat.extractors.declarations.encoder import ENCODER
from radfeat.extractors.densenet import DenseNetExtractor
from radfeat.output.columns import block_names
from radfeat.pipeline.discovery import ImageRef


class EncoderExtractor(DenseNetExtractor):
    kind = ENCODER.name

    def prepare(self) -> None:
        super().prepare()
        self.autoencoder = self.wset.architecture == "resnet-ae"
        if self.autoencoder:
            if self.want_pred:
                self.log(f"{self.wset.name} is an autoencoder without predictions: writing its latent code only")
            self.want_dense, self.want_pred = True, False

    @property
    def dense_family(self) -> str:
        return "latent" if self.autoencoder else "resnetfeatures"

    def columns(self) -> list[str]:
        cols: list[str] = []
        if self.want_dense:
            cols += block_names(self.opts.prefix, self.dense_family, self.info.num_features)
        if self.want_pred:
            cols += block_names(self.opts.prefix, "predictions", self.info.num_classes)
        return cols

    def fingerprint(self) -> dict[str, Any]:
        return {"type": self.kind, **super().fingerprint(), "architecture": self.wset.architecture}

    def run(self, items: Sequence[np.ndarray], refs: Sequence[ImageRef]) -> BatchResult:
        x = np.stack(items)[:, None]
        if self.autoencoder:
            (feats,) = self.session.run(x, ["features"])
            return BatchResult(list(refs), blocks=[feats])
        return super().run(items, refs)

    def provenance(self) -> dict[str, Any]:
        prov = super().provenance()
        prov["weights"]["architecture"] = self.wset.architecture
        prov["export"]["input_size"] = self.wset.input_size
        return prov
