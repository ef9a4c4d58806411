"""Export a weight set to ONNX on first use, validate it against torch, cache it.

One graph, one backbone pass.  For a DenseNet, three outputs:

* ``predictions`` — exactly what TorchXRayVision's ``model(x)`` returns for the
  weight set: sigmoid then operating-point calibration where thresholds exist
  (untrained heads give 0.5), sigmoid alone when the checkpoint asks for it,
  raw logits otherwise;
* ``features`` — exactly ``model.features2(x)`` (ReLU + global average pool);
* ``activations`` — the ReLU of the last feature map (``N × 1024 × 7 × 7`` at 224), the
  tensor that ``features`` averages; saliency maps are computed from it and the
  classifier's weights, which are saved beside the export (``.head.npz``).

For the other TorchXRayVision encoders: ResNet (``predictions`` = ``model(x)``,
``features`` = ``model.features(x)``, 2048 long) and the ResNet autoencoder
(``features`` = ``model.encode(x)`` flattened, the latent code).

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
from radfeat.errors import RadfeatError
from radfeat.output.atomic import atomic_open, atomic_path, file_lock, write_text_atomic
from radfeat.weights import home
from radfeat.weights.catalog import WeightSet
from radfeat.weights.digest import sha256_file

# Part of every export's cache key: a new version makes older cached exports be redone.
# 2: DenseNet exports add the 'activations' output; ResNet/autoencoder exports appear (written at version 2 only).
EXPORT_VERSION = 2
OPSET = 17
PRED_TOL = 1e-5
FEAT_REL_TOL = 1e-4


class ExportError(RadfeatError, RuntimeError):
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
    architecture: str = "densenet121"
    outputs: tuple[str, ...] = ("predictions", "features")
    max_act_diff: float | None = None

    @property
    def head_path(self) -> Path:
        """Classifier weights and bias of a DenseNet export (``weight``, ``bias``), for saliency maps."""
        return self.path.with_suffix(".head.npz")

    def to_json(self) -> dict:
        return {
            "path": str(self.path),
            "weights_sha256": self.weights_sha256,
            "max_pred_diff": self.max_pred_diff,
            "max_feat_diff": self.max_feat_diff,
            "feat_scale": self.feat_scale,
            "num_features": self.num_features,
            "num_classes": self.num_classes,
            "architecture": self.architecture,
            "outputs": list(self.outputs),
            "max_act_diff": self.max_act_diff,
        }

    @classmethod
    def from_json(cls, path: Path, sha: str, meta: dict) -> ExportInfo:
        return cls(path, sha, meta["max_pred_diff"], meta["max_feat_diff"], meta["feat_scale"],
                   meta["num_features"], meta["num_classes"], meta.get("architecture", "densenet121"),
                   tuple(meta.get("outputs", ("predictions", "features"))), meta.get("max_act_diff"))


def _settings_key(wset: WeightSet) -> str:
    settings = {
        "export_version": EXPORT_VERSION,
        "opset": OPSET,
        "op_threshs": wset.thresholds_array() and [None if math.isnan(t) else t for t in wset.thresholds_array()],
        "apply_sigmoid": wset.apply_sigmoid,
        "input_size": wset.input_size,
        "architecture": wset.architecture,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def weights_sha256(wset: WeightSet) -> str:
    """sha256 of the weights file, cached beside it (keyed by size and mtime)."""
    path = wset.path
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


def onnx_path(wset: WeightSet, sha: str | None = None) -> Path:
    sha = sha or weights_sha256(wset)
    return home.onnx_dir() / f"{wset.name}-{sha[:16]}-{_settings_key(wset)}.onnx"


def needs_export(wset: WeightSet) -> bool:
    """False for a registered ONNX model: the file is already what ONNX Runtime runs."""
    return wset.architecture not in ("onnx", "segmentation-onnx")  # registered ONNX models are their own export


def is_exported(wset: WeightSet) -> bool:
    """True when an up-to-date ONNX export of ``wset`` is cached (a registered ONNX model is its own export)."""
    if not needs_export(wset):
        return wset.downloaded
    return wset.downloaded and onnx_path(wset).is_file()


def _wrapper(model, op_threshs: list[float] | None, apply_sigmoid: bool, architecture: str = "densenet121"):
    import torch
    import torch.nn.functional as F

    class Heads(torch.nn.Module):
        """One backbone pass, the classifier on its pooled features, then TorchXRayVision's output calibration."""

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

        def calibrate(self, out):
            if self.thr is not None:
                p = torch.sigmoid(out)
                below = p / (self.thr * 2)
                above = 1.0 - ((1.0 - p) / ((1 - self.thr) * 2))
                out = torch.where(self.trained, torch.where(p < self.thr, below, above), torch.full_like(p, 0.5))
            elif apply_sigmoid:
                out = torch.sigmoid(out)
            return out

        def forward(self, x):
            if architecture == "resnet-ae":
                return self.model.encode(x, check_resolution=False).flatten(1)
            if architecture.startswith("resnet"):  # xrv.models.ResNet: features(x), then the fc layer
                feats = self.model.features(x)
                return self.calibrate(self.model.model.fc(feats)), feats
            # DenseNet: the operations of model.features2(x), keeping the ReLU'd map as a third output
            fmap = self.model.features(x)
            act = F.relu(fmap)
            feats = F.adaptive_avg_pool2d(act, (1, 1)).view(fmap.size(0), -1)
            return self.calibrate(self.model.classifier(feats)), feats, act

    return Heads().eval()


def output_names(architecture: str) -> tuple[str, ...]:
    if architecture == "resnet-ae":
        return ("features",)
    if architecture.startswith("resnet"):
        return ("predictions", "features")
    return ("predictions", "features", "activations")


def probe_batch(size: int, n: int = 3) -> np.ndarray:
    """Deterministic X-ray-like inputs in [-1024, 1024] used to validate an export."""
    rng = np.random.default_rng(20240917)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for i in range(n):
        base = np.sin(6 * xx + i) * np.cos(4 * yy - i) * 700 + rng.normal(0, 120, (size, size))
        out.append(np.clip(base, -1024, 1024))
    return np.asarray(out, dtype=np.float32)[:, None]


def export(wset: WeightSet, log: Callable[[str], None] = print) -> ExportInfo:
    """Return the cached ONNX export of ``wset``, exporting and validating it first if needed."""
    sha = weights_sha256(wset)
    dest = onnx_path(wset, sha)
    meta_path = dest.with_suffix(".json")
    with file_lock(str(dest) + ".lock"):
        head_ok = not wset.architecture.startswith("densenet") or dest.with_suffix(".head.npz").is_file()
        if dest.is_file() and meta_path.is_file() and head_ok:
            return ExportInfo.from_json(dest, sha, json.loads(meta_path.read_text()))
        info = _export_uncached(wset, sha, dest, log)
        write_text_atomic(meta_path, json.dumps(info.to_json(), indent=2))
        return info


def _reference(model, x, architecture: str) -> dict[str, np.ndarray]:
    """TorchXRayVision's own calls, each on a fresh copy of the input."""
    import torch

    with torch.no_grad():
        if architecture == "resnet-ae":
            return {"features": model.encode(x.clone()).flatten(1).numpy()}
        if architecture.startswith("resnet"):
            return {"predictions": model(x.clone()).numpy(), "features": model.features(x.clone()).numpy()}
        return {"predictions": model(x.clone()).numpy(), "features": model.features2(x.clone()).numpy(),
                "activations": torch.relu(model.features(x.clone())).numpy()}


def _export_uncached(wset: WeightSet, sha: str, dest: Path, log: Callable[[str], None]) -> ExportInfo:
    import warnings

    import onnxruntime as ort
    import torch
    from radfeat.weights.architectures import build, checkpoint_family  # torch: never on a cached run
    from radfeat.weights.checkpoint import load_checkpoint

    arch = wset.architecture
    log(f"Exporting {wset.name} to ONNX (first use)...")
    ckpt = load_checkpoint(wset.path, checkpoint_family(arch))
    model = build(ckpt, arch, wset.thresholds_array(), wset.apply_sigmoid, wset.input_size)
    wrapper = _wrapper(model, wset.thresholds_array(), wset.apply_sigmoid, arch)
    names = output_names(arch)
    probe = probe_batch(wset.input_size, 3 if wset.input_size <= 256 else 2)  # 2 probes at 512: same check, less time
    x = torch.from_numpy(probe)
    axes = {"image": {0: "batch"}, **{n: {0: "batch"} for n in names}}
    with atomic_path(dest) as tmp:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper, (x,), str(tmp), input_names=["image"], output_names=list(names),
                dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True,
            )
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = dict(zip(names, sess.run(list(names), {"image": probe}), strict=True))
        ref = _reference(model, x, arch)
        feat_diff = float(np.max(np.abs(got["features"] - ref["features"])))
        scale = float(np.max(np.abs(ref["features"]))) or 1.0
        pred_diff = float(np.max(np.abs(got["predictions"] - ref["predictions"]))) if "predictions" in got else 0.0
        act_diff = act_scale = None
        if "activations" in got:
            act_diff = float(np.max(np.abs(got["activations"] - ref["activations"])))
            act_scale = float(np.max(np.abs(ref["activations"]))) or 1.0
        log("ONNX check on a probe batch: max |Δ| "
            + (f"predictions {pred_diff:.2e}, " if "predictions" in got else "")
            + f"features {feat_diff:.2e} (largest feature {scale:.3g})")
        # probabilities are compared absolutely; raw logits (no calibration) relative to their size
        pred_scale = 1.0
        if "predictions" in got and not (wset.op_threshs is not None or wset.apply_sigmoid):
            pred_scale = max(1.0, float(np.abs(ref["predictions"]).max()))
        ok = pred_diff <= PRED_TOL * pred_scale and feat_diff <= FEAT_REL_TOL * scale
        if act_diff is not None:
            ok = ok and act_diff <= FEAT_REL_TOL * act_scale
        if not ok:
            raise ExportError(
                f"ONNX export of {wset.name} does not match torch (predictions {pred_diff:.2e}, features {feat_diff:.2e}"
                + (f", activations {act_diff:.2e})" if act_diff is not None else ")")
            )
        if "activations" in got:  # the classifier, for saliency maps computed without torch
            head = {"weight": model.classifier.weight.detach().numpy().astype(np.float32),
                    "bias": model.classifier.bias.detach().numpy().astype(np.float32)}
            with atomic_open(dest.with_suffix(".head.npz"), "wb") as fh:
                np.savez(fh, **head)
    n_classes = int(got["predictions"].shape[1]) if "predictions" in got else 0
    return ExportInfo(dest, sha, pred_diff, feat_diff, scale, int(got["features"].shape[1]), n_classes,
                      arch, names, act_diff)
