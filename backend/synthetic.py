"""Synthetic chest-X-ray-like images and patient folders, for the demo, tests and benchmarks."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from PIL import Image


def chest_like(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth, radiograph-looking 8-bit image: two dark lung fields, a bright mediastinum, ribs, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    y, x = yy / height, xx / width
    img = 170 - 60 * (np.exp(-(((x - 0.3) / 0.16) ** 2 + ((y - 0.5) / 0.28) ** 2))
                      + np.exp(-(((x - 0.7) / 0.16) ** 2 + ((y - 0.5) / 0.28) ** 2)))
    img += 40 * np.exp(-(((x - 0.5) / 0.08) ** 2))
    img += 12 * np.sin(2 * np.pi * (y * 9 + 0.3 * np.sin(x * 6 + seed)))
    img += rng.normal(0, 6, size=img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_dataset(root: Path, *, n_patients: int = 4, per_folder: int = 2, depth: int = 1,
                 size: tuple[int, int] = (320, 256), seed: int = 0, quality: int = 95,
                 dates_csv: Path | None = None) -> list[Path]:
    """Write ``p<i>/[a<j>/]img<k>.jpg`` under ``root`` (file names unique) and optionally a dates CSV."""
    root = Path(root)
    paths: list[Path] = []
    start = datetime(2021, 1, 4, 8, 30)
    rows = []
    k = 0
    for p in range(1, n_patients + 1):
        folders = [root / f"p{p}"] if depth == 1 else [root / f"p{p}" / f"adm{a}" for a in (1, 2)]
        for folder in folders:
            for extra in range(depth - 2):
                folder = folder / f"s{extra}"
            folder.mkdir(parents=True, exist_ok=True)
            for _ in range(per_folder):
                k += 1
                h, w = size
                path = folder / f"cxr_{k:05d}.jpg"
                Image.fromarray(chest_like(h, w, seed + k)).save(path, "JPEG", quality=quality)
                paths.append(path)
                rows.append((path.name, (start + timedelta(days=k, hours=k % 7)).strftime("%Y-%m-%d %H:%M:%S")))
    if dates_csv is not None:
        with open(dates_csv, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["image", "taken_at"])
            w.writerows(rows)
    return paths


def random_checkpoint(path: Path, *, seed: int = 0, small: bool = False, with_thresholds: bool = True) -> Path:
    """Save a random-initialised TorchXRayVision DenseNet in TorchXRayVision's own format (pickled module)."""
    import torch
    from radfeat.xrv_compat import import_xrv  # torch: only tests and the demo make checkpoints

    xrv = import_xrv()
    torch.manual_seed(seed)
    kwargs = dict(growth_rate=8, block_config=(2, 2, 2, 2), num_init_features=16) if small else {}
    model = xrv.models.DenseNet(num_classes=18, **kwargs)
    with torch.no_grad():  # make BatchNorm statistics non-trivial so eval-mode numbers exercise them
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.1, 0.1)
        model.classifier.weight.mul_(0.02)  # random heads: keep probabilities away from 0/1
    model.pathologies = list(xrv.datasets.default_pathologies)
    if with_thresholds:
        thr = torch.rand(18) * 0.4 + 0.05
        thr[[2, 5, 6]] = float("nan")  # untrained heads, as in the CheXpert weights
        model.op_threshs = thr
    model.eval()
    torch.save(model, path)
    return path
