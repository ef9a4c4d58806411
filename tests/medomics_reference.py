"""What the MEDomics app's image extraction computes and stores, re-stated for comparisons.

Behaviour of MEDomicsLab's ``pythonCode/modules/extraction_image/DenseNet_extraction.py`` (read for
facts, not copied): for each file of the page's list, in that order, ``skimage.io.imread`` the file,
TorchXRayVision's ``normalize(img, 255)``, keep the first channel, ``cv2.resize`` the *whole* image to
224 × 224 with ``INTER_AREA``, build the model again (``xrv.models.DenseNet(weights=...)``), then
``features`` → ReLU → global average pool, and ``model(x)``; one record per image with ``level_1 …
level_<depth>``, ``filename``, then ``<prefix>_densefeatures_<i>`` and ``<prefix>_predictions_<i>`` as Python
floats.  Here the model is rebuilt from the test checkpoint file instead of a download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def medomics_records(files: list[Path], depth: int, checkpoint: Path, prefix: str,
                     families: tuple[str, ...] = ("denseFeatures", "predictions")) -> list[dict]:
    import cv2
    import skimage.io
    import torch
    import torch.nn.functional as F
    from radfeat.xrv_compat import import_xrv

    xrv = import_xrv()
    records = []
    for file in files:
        parts = Path(file).parts[-(depth + 1):]
        record: dict = {f"level_{i + 1}": parts[i] for i in range(depth)}
        record["filename"] = parts[-1]
        img = xrv.datasets.normalize(skimage.io.imread(str(file)), 255)
        if img.ndim > 2:
            img = img[:, :, 0]
        img = cv2.resize(img, (224, 224), interpolation=cv2.INTER_AREA)[None, :, :]
        model = torch.load(checkpoint, map_location="cpu", weights_only=False).eval()  # rebuilt per image
        with torch.no_grad():
            x = torch.from_numpy(img).unsqueeze(0)
            feats = F.adaptive_avg_pool2d(F.relu(model.features(x)), (1, 1)).numpy().reshape(-1)
            preds = model(x).numpy()[0]
        if "denseFeatures" in families:
            record.update({f"{prefix}_densefeatures_{i}": float(v) for i, v in enumerate(feats)})
        if "predictions" in families:
            record.update({f"{prefix}_predictions_{i}": float(v) for i, v in enumerate(preds)})
        records.append(record)
    return records


def dead_channel_checkpoint(source: Path, dest: Path, channel: int = 0) -> Path:
    """A copy of a TorchXRayVision DenseNet whose dense feature ``channel`` is 0 for every image."""
    import torch
    from radfeat.xrv_compat import import_xrv

    import_xrv()
    model = torch.load(source, map_location="cpu", weights_only=False)
    with torch.no_grad():
        model.features.norm5.weight[channel] = 0.0
        model.features.norm5.bias[channel] = -1.0  # constant -1 before the ReLU: the feature is exactly 0
    torch.save(model, dest)
    return dest


def as_array(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)
