"""The model store: what is downloaded and exported, and registering a user's own checkpoint."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from .atomic import atomic_path
from .catalog import Catalog, WeightSet, default_pathologies

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def status(catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """One row per weight set: name, labels trained, downloaded, exported, size on disk."""
    from .export import is_exported

    catalog = catalog or Catalog()
    rows = []
    for ws in catalog.entries():
        rows.append({
            "name": ws.name,
            "description": ws.description,
            "labels": list(ws.labels),
            "trained_labels": ws.trained_labels,
            "downloaded": ws.downloaded,
            "exported": is_exported(ws),
            "size": ws.path.stat().st_size if ws.downloaded else ws.size,
            "source": ws.source,
            "default": ws.name == catalog.default,
        })
    return rows


def add_weights(name: str, source: Path, *, log=print) -> WeightSet:
    """Register a user's TorchXRayVision DenseNet checkpoint under ``name`` (copied into the home folder)."""
    from .checkpoint import build_model, load_checkpoint
    from .digest import sha256_file

    if not _NAME_RE.fullmatch(name or ""):
        raise ValueError("Weights name must start with a letter or digit and use only letters, digits, '.', '_' or '-'")
    catalog = Catalog()
    if name in catalog and catalog.get(name).source == "catalog":
        raise ValueError(f"'{name}' is a catalog weight set; choose another name")
    source = Path(source).expanduser()
    if not source.is_file():
        raise ValueError(f"Checkpoint not found: {source}")
    ckpt = load_checkpoint(source)  # restricted unpickling: refuses anything but tensors and module state
    n = ckpt.num_classes
    labels = ckpt.pathologies or (default_pathologies() if n == len(default_pathologies()) else
                                  [f"class_{i}" for i in range(n)])
    labels = (list(labels) + [""] * n)[:n]
    if ckpt.op_threshs is not None and len(ckpt.op_threshs) == n:  # NaN operating point = untrained head
        labels = ["" if t != t else label for label, t in zip(labels, ckpt.op_threshs, strict=True)]
    thr = ckpt.op_threshs if ckpt.op_threshs is not None and len(ckpt.op_threshs) == n else None
    build_model(ckpt, thr, ckpt.apply_sigmoid)  # proves it is a DenseNet TorchXRayVision can run
    entry = WeightSet(
        name=name, file=f"user-{name}.pt", labels=tuple(labels),
        op_threshs=None if thr is None else tuple(None if t != t else t for t in thr),
        sha256=sha256_file(source), size=source.stat().st_size, apply_sigmoid=ckpt.apply_sigmoid,
        description=f"User checkpoint from {source.name}", source="user",
    )
    with atomic_path(entry.path) as tmp:
        shutil.copyfile(source, tmp)
    catalog.register(entry)
    log(f"Registered '{name}' ({n} outputs, {len(entry.trained_labels)} labelled, "
        f"{'with' if thr else 'without'} operating thresholds)")
    return entry
