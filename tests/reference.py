"""TorchXRayVision's own pipeline, as the MEDomics app runs it, for comparisons in tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_xrv_model(path: Path):
    """The checkpoint as TorchXRayVision loads it (a trusted, test-made file: plain torch.load)."""
    import torch
    from radfeat.xrv_compat import import_xrv

    import_xrv()
    return torch.load(path, map_location="cpu", weights_only=False).eval()


def xrv_input(path: Path, mode: str = "xrv") -> np.ndarray:
    """skimage read → xrv normalise → first channel → (crop + skimage resize | cv2 INTER_AREA)."""
    import skimage.io
    from radfeat.xrv_compat import import_xrv

    xrv = import_xrv()
    img = skimage.io.imread(str(path))
    maxval = 255 if img.dtype == np.uint8 else 65535
    img = xrv.datasets.normalize(img, maxval)
    if img.ndim > 2:
        img = img[:, :, 0]
    if mode == "xrv":
        img = img[None, :, :]
        img = xrv.datasets.XRayCenterCrop()(img)
        return xrv.datasets.XRayResizer(224)(img)
    import cv2

    return cv2.resize(img, (224, 224), interpolation=cv2.INTER_AREA)[None, :, :]


def xrv_outputs(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``model.features2`` and ``model(x)`` called separately, one image at a time, as the reference does."""
    import torch

    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(0)
        feats = model.features2(t.clone()).numpy()[0]
        preds = model(t.clone()).numpy()[0]
    return feats, preds
