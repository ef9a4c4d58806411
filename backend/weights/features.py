"""What a weight set writes, for `list_weights`: its feature family named and counted, so the page can say it.

``feature_family`` (the column family, e.g. ``densefeatures``), ``feature_label`` ("Dense features"),
``feature_count`` (per image; ``None`` when unknown) and ``needs_export`` (a TorchXRayVision checkpoint is
exported to ONNX on first use; a registered ONNX model is not).
"""

from __future__ import annotations

from typing import Any


def feature_family(ws: Any) -> dict[str, Any]:
    """The per-image feature vector a weight set writes (column family, label, length) and whether it is exported."""
    arch = ws.architecture or ""
    if arch == "onnx":
        cfg = ws.extra or {}
        outputs = list(cfg.get("outputs") or [])
        families, sizes = cfg.get("families") or {}, cfg.get("sizes") or {}
        first = outputs[0] if outputs else None
        return {"feature_family": families.get(first, "output"), "feature_label": "Outputs",
                "feature_count": sum(int(sizes.get(o, 0)) for o in outputs) or None, "needs_export": False}
    if arch.startswith("densenet"):
        return {"feature_family": "densefeatures", "feature_label": "Dense features", "feature_count": 1024, "needs_export": True}
    if arch == "resnet-ae":
        return {"feature_family": "latent", "feature_label": "Latent code", "feature_count": 512 * 3 * 3, "needs_export": True}
    return {"feature_family": "resnetfeatures", "feature_label": "ResNet features", "feature_count": 2048, "needs_export": True}
