"""Export a weight set to ONNX on first use, validate it against torch, cache it.

One graph, one backbone pass, two outputs:

* ``predictions`` — exactly what TorchXRayVision's ``model(x)`` returns for the
  weight set: sigmoid then operating-point calibration where thresholds exist
  (untrained heads give 0.5), sigmoid alone when the checkpoint asks for it,
  raw logits otherwise;
* ``features`` — exactly ``model.features2(x)`` (ReLU + global average pool).

The batch axis is dynamic.  Before an export is cached it is run by ONNX
Runtime on a probe batch and compared with the torch model; the cache file is
keyed by the weights' sha256 and the export settings, written atomically under
a file lock so two processes never export the same model at once.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

from . import home
from .atomic import atomic_path, write_text_atomic
from .catalog import WeightSet

EXPORT_VERSION = 1
OPSET = 17
PRED_TOL = 1e-5
FEAT_REL_TOL = 1e-4


class ExportError(RuntimeError):
    """The ONNX graph did not reproduce the torch model; nothing was cached."""


@dataclass(frozen=True)
class ExportInfo:
    path: Path
    weights_sha256: str
    max_pred_diff: float
    max_feat_diff: float
    feat_scale: float
    num_features: int
    num_classes: int

    def to_json(self) -> dict:
        return {
            "path": str(self.path),
            "weights_sha256": self.weights_sha256,
            "max_pred_diff": self.max_pred_diff,
            "max_feat_diff": self.max_feat_diff,
            "feat_scale": self.feat_scale,
            "num_features": self.num_features,
            "num_classes": self.num_classes,
        }


def _settings_key(ws: WeightSet) -> str:
    settings = {
        "export_version": EXPORT_VERSION,
        "opset": OPSET,
        "op_threshs": ws.thresholds_array() and [None if math.isnan(t) else t for t in ws.thresholds_array()],
        "apply_sigmoid": ws.apply_sigmoid,
        "input_size": ws.input_size,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def weights_sha256(ws: WeightSet) -> str:
    """sha256 of the weights file, cached beside it (keyed by size and mtime)."""
    from .digest import sha256_file

    path = ws.path
    stat = path.stat()
    stamp = path.with_name(path.name + ".sha256")
    tag = f"{stat.st_size}:{stat.st_mtime_ns}"
    if stamp.is_file():
        parts = stamp.read_text().split()
        if len(parts) == 2 and parts[1] == tag:
            return parts[0]
    digest = sha256_file(path)
    write_text_atomic(stamp, f"{digest} {tag}\n")
    return digest


def onnx_path(ws: WeightSet, sha: str | None = None) -> Path:
    sha = sha or weights_sha256(ws)
    return home.onnx_dir() / f"{ws.name}-{sha[:16]}-{_settings_key(ws)}.onnx"


def is_exported(ws: WeightSet) -> bool:
    """True when an up-to-date ONNX export of ``ws`` is cached."""
    return ws.downloaded and onnx_path(ws).is_file()


def _wrapper(model, op_threshs: list[float] | None, apply_sigmoid: bool):
    import torch

    class Heads(torch.nn.Module):
        """features2 once, the classifier on it, then TorchXRayVision's output calibration."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            if op_threshs is not None:
                thr = torch.tensor([0.5 if math.isnan(t) else t for t in op_threshs], dtype=torch.float32)
                trained = torch.tensor([not math.isnan(t) for t in op_threshs])
                self.register_buffer("thr", thr[None, :])
                self.register_buffer("trained", trained[None, :])
            else:
                self.thr = None

        def forward(self, x):
            feats = self.model.features2(x)
            out = self.model.classifier(feats)
            if self.thr is not None:
                p = torch.sigmoid(out)
                below = p / (self.thr * 2)
                above = 1.0 - ((1.0 - p) / ((1 - self.thr) * 2))
                out = torch.where(self.trained, torch.where(p < self.thr, below, above), torch.full_like(p, 0.5))
            elif apply_sigmoid:
                out = torch.sigmoid(out)
            return out, feats

    return Heads().eval()


def probe_batch(size: int, n: int = 3) -> np.ndarray:
    """Deterministic X-ray-like inputs in [-1024, 1024] used to validate an export."""
    rng = np.random.default_rng(20240917)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for i in range(n):
        base = np.sin(6 * xx + i) * np.cos(4 * yy - i) * 700 + rng.normal(0, 120, (size, size))
        out.append(np.clip(base, -1024, 1024))
    return np.asarray(out, dtype=np.float32)[:, None]


def export(ws: WeightSet, log: Callable[[str], None] = print) -> ExportInfo:
    """Return the cached ONNX export of ``ws``, exporting and validating it first if needed."""
    sha = weights_sha256(ws)
    dest = onnx_path(ws, sha)
    meta_path = dest.with_suffix(".json")
    with FileLock(str(dest) + ".lock", timeout=600):
        if dest.is_file() and meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            return ExportInfo(dest, sha, meta["max_pred_diff"], meta["max_feat_diff"], meta["feat_scale"],
                              meta["num_features"], meta["num_classes"])
        info = _export_uncached(ws, sha, dest, log)
        write_text_atomic(meta_path, json.dumps(info.to_json(), indent=2))
        return info


def _export_uncached(ws: WeightSet, sha: str, dest: Path, log: Callable[[str], None]) -> ExportInfo:
    import warnings

    import onnxruntime as ort
    import torch

    from .checkpoint import build_model, load_checkpoint

    log(f"Exporting {ws.name} to ONNX (first use)...")
    ckpt = load_checkpoint(ws.path)
    model = build_model(ckpt, ws.thresholds_array(), ws.apply_sigmoid)
    wrapper = _wrapper(model, ws.thresholds_array(), ws.apply_sigmoid)
    probe = probe_batch(ws.input_size)
    x = torch.from_numpy(probe)
    with atomic_path(dest) as tmp:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, (x,), str(tmp), input_names=["image"], output_names=["predictions", "features"],
                dynamic_axes={"image": {0: "batch"}, "predictions": {0: "batch"}, "features": {0: "batch"}},
                opset_version=OPSET, dynamo=False, do_constant_folding=True,
            )
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        preds, feats = sess.run(["predictions", "features"], {"image": probe})
        with torch.no_grad():  # the reference: TorchXRayVision's own two calls
            ref_preds = model(x.clone()).numpy()
            ref_feats = model.features2(x.clone()).numpy()
        pred_diff = float(np.max(np.abs(preds - ref_preds)))
        feat_diff = float(np.max(np.abs(feats - ref_feats)))
        scale = float(np.max(np.abs(ref_feats))) or 1.0
        log(f"ONNX check on a probe batch: max |Δ| predictions {pred_diff:.2e}, "
            f"features {feat_diff:.2e} (largest feature {scale:.3g})")
        # probabilities are compared absolutely; raw logits (no calibration) relative to their size
        pred_scale = 1.0 if (ws.op_threshs is not None or ws.apply_sigmoid) else max(1.0, float(np.abs(ref_preds).max()))
        if not (pred_diff <= PRED_TOL * pred_scale and feat_diff <= FEAT_REL_TOL * scale):
            raise ExportError(
                f"ONNX export of {ws.name} does not match torch (predictions {pred_diff:.2e}, features {feat_diff:.2e})"
            )
    return ExportInfo(dest, sha, pred_diff, feat_diff, scale, int(feats.shape[1]), int(preds.shape[1]))
