"""TorchXRayVision's own pipeline, for comparisons in tests and benchmarks.

``xrv_input(path, "xrv")`` is TorchXRayVision's pipeline (skimage read, normalise, first channel, centre
crop, ``XRayResizer``); ``xrv_input(path, "medomics")`` is what the MEDomics app does (the whole image,
``cv2.resize`` INTER_AREA); ``xrv_dicom_input`` starts from ``torchxrayvision.utils.read_xray_dcm``.
The MEDomics app itself also rebuilds the model for every image (see ``medomics_reference.py``); the
references here load it once, which changes no number.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_xrv_model(path: Path):
    """The checkpoint as TorchXRayVision loads it (a trusted, test-made file: plain torch.load)."""
    import torch
    from radfeat.xrv_compat import import_xrv

    import_xrv()
    return torch.load(path, map_location="cpu", weights_only=False).eval()


def xrv_input(path: Path, mode: str = "xrv", size: int = 224) -> np.ndarray:
    """skimage read → xrv normalise → first channel → (crop + skimage resize | cv2 INTER_AREA) to ``size``."""
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
        return xrv.datasets.XRayResizer(size)(img)
    import cv2

    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)[None, :, :]


def randomise_batchnorm(model, seed: int) -> None:
    """Non-trivial BatchNorm statistics and affine terms, so eval-mode numbers exercise them."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                n = mod.num_features
                mod.running_mean.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)
                mod.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                mod.weight.copy_(torch.rand(n, generator=gen) * 0.5 + 0.5)
                mod.bias.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)


def xrv_outputs(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``model.features2`` and ``model(x)`` called separately, one image at a time, as the reference does."""
    import torch

    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(0)
        feats = model.features2(t.clone()).numpy()[0]
        preds = model(t.clone()).numpy()[0]
    return feats, preds


def xrv_dicom_input(path: Path, mode: str = "xrv", voi_lut: bool = False) -> np.ndarray:
    """``read_xray_dcm`` (default arguments unless ``voi_lut``) → TorchXRayVision's transforms."""
    import warnings

    from radfeat.xrv_compat import import_xrv

    xrv = import_xrv()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # read_xray_dcm warns on every MONOCHROME1 file
        img = xrv.utils.read_xray_dcm(path, voi_lut=voi_lut)
    if mode == "xrv":
        img = xrv.datasets.XRayCenterCrop()(img[None, :, :])
        return xrv.datasets.XRayResizer(224)(img)
    import cv2

    return cv2.resize(img, (224, 224), interpolation=cv2.INTER_AREA)[None, :, :]
