"""TorchXRayVision's ChestX-Det PSPNet (14 anatomical structures), exported to ONNX on first use.

``xrv.baseline_models.chestx_det.PSPNet`` downloads its weights in its constructor, so radfeat never
calls it: it builds TorchXRayVision's own inner network (``ptsemseg.pspnet.pspnet``, plain torch —
no torchvision ResNet, no pretrained backbone download), loads the release's state dict with the
restricted loader (:func:`radfeat.weights.checkpoint.load_checkpoint`; the file's ``module.``
prefix is dropped as TorchXRayVision does) and wraps it with exactly what ``PSPNet.forward`` does
to an input that is already at its resolution::

    x.repeat(1, 3, 1, 1) → (x + 1024) / 2048 → Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]) → pspnet

The ONNX graph takes ``image`` (``N × 1 × S × S``, TorchXRayVision's [-1024, 1024] range, ``S`` the
catalog ``input_size``, 512 for the release) and gives ``logits`` (``N × 14 × S × S``); a structure's
mask is ``logits > 0`` (TorchXRayVision's ``sigmoid > 0.5``).  Before caching, the export is checked
against the torch model on probe images: masks must agree with IoU ≥ 0.999 per structure.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from radfeat.output.atomic import atomic_path, file_lock, write_text_atomic
from radfeat.weights.catalog import WeightSet
from radfeat.weights.export import OPSET, ExportError, onnx_path, weights_sha256

STRUCTURES = ("Left Clavicle", "Right Clavicle", "Left Scapula", "Right Scapula", "Left Lung", "Right Lung",
              "Left Hilus Pulmonis", "Right Hilus Pulmonis", "Heart", "Aorta", "Facies Diaphragmatica",
              "Mediastinum", "Weasand", "Spine")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MIN_IOU = 0.999


@dataclass(frozen=True)
class SegmentationExport:
    path: Path
    weights_sha256: str
    labels: tuple[str, ...]
    input_size: int
    min_iou: float
    max_logit_diff: float

    def to_json(self) -> dict:
        data = asdict(self)
        data["path"] = str(self.path)
        data["labels"] = list(self.labels)
        return data


def block_config(state: dict) -> list[int]:
    """Residual blocks per stage (``res_block2`` … ``res_block5``) read off the state dict."""
    counts = []
    for stage in range(2, 6):
        pat = re.compile(rf"res_block{stage}\.layers\.(\d+)\.")
        idx = {int(m.group(1)) for k in state if (m := pat.match(k))}
        counts.append(max(idx) + 1 if idx else 0)
    return counts


def build_pspnet(path: Path):
    """TorchXRayVision's pspnet with the weights of ``path`` (a state dict), in eval mode."""
    from radfeat.weights.checkpoint import CheckpointError, load_checkpoint
    from radfeat.xrv_compat import import_xrv

    import_xrv()
    from torchxrayvision.baseline_models.chestx_det.ptsemseg.pspnet import pspnet

    ckpt = load_checkpoint(path, "pspnet")
    state = ckpt.state_dict
    n_classes = int(state["classification.weight"].shape[0])
    model = pspnet(n_classes, block_config=block_config(state))
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path.name}: not a ChestX-Det PSPNet state dict ({str(exc).splitlines()[0]})") from None
    return model.eval()


def wrapper(net):
    """``PSPNet.forward`` for an input already at the export size."""
    import torch

    class Segmenter(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

        def forward(self, x):
            x = x.repeat(1, 3, 1, 1)
            x = (x + 1024) / 2048
            return self.net((x - self.mean) / self.std)

    return Segmenter().eval()


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU per structure of two ``N × C × H × W`` boolean masks (1 where both are empty)."""
    inter = np.logical_and(a, b).sum(axis=(0, 2, 3))
    union = np.logical_or(a, b).sum(axis=(0, 2, 3))
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def probe_images(size: int, n: int = 2) -> np.ndarray:
    """Synthetic radiographs (lungs, mediastinum, ribs) in [-1024, 1024], ``n × 1 × size × size``."""
    from radfeat.synthetic import chest_like

    imgs = [chest_like(size, size, seed=31 + i).astype(np.float32) for i in range(n)]
    return (np.stack(imgs)[:, None] / 255.0 * 2048.0 - 1024.0).astype(np.float32)


def export_segmentation(wset: WeightSet, log: Callable[[str], None] = print) -> SegmentationExport:
    """The cached ONNX export of a PSPNet weight set, exported and checked first if needed."""
    sha = weights_sha256(wset)
    dest = onnx_path(wset, sha)
    meta_path = dest.with_suffix(".json")
    with file_lock(str(dest) + ".lock", timeout=1800):
        if dest.is_file() and meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            return SegmentationExport(dest, sha, tuple(meta["labels"]), int(meta["input_size"]),
                                      float(meta["min_iou"]), float(meta["max_logit_diff"]))
        info = _export(wset, sha, dest, log)
        write_text_atomic(meta_path, json.dumps(info.to_json(), indent=2))
        return info


def _export(wset: WeightSet, sha: str, dest: Path, log: Callable[[str], None]) -> SegmentationExport:
    import onnxruntime as ort
    import torch

    log(f"Exporting {wset.name} to ONNX (first use; a PSPNet at {wset.input_size} takes a while)...")
    net = build_pspnet(wset.path)
    model = wrapper(net)
    probe = probe_images(wset.input_size)
    x = torch.from_numpy(probe)
    with atomic_path(dest) as tmp:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x[:1],), str(tmp), input_names=["image"], output_names=["logits"],
                              dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET,
                              dynamo=False, do_constant_folding=True)
            ref = model(x).numpy()
        got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(["logits"], {"image": probe})[0]
        iou = mask_iou(got > 0, ref > 0)
        diff = float(np.max(np.abs(got - ref)))
        log(f"ONNX check on {len(probe)} synthetic radiographs: mask IoU ≥ {iou.min():.6f} per structure, "
            f"max |Δ logit| {diff:.2e}")
        if iou.min() < MIN_IOU:
            raise ExportError(f"ONNX export of {wset.name} does not match torch (mask IoU {iou.min():.6f} < {MIN_IOU})")
    labels = tuple(wset.labels) if len(wset.labels) == ref.shape[1] else STRUCTURES[: ref.shape[1]]
    return SegmentationExport(dest, sha, labels, wset.input_size, float(iou.min()), diff)


# -- your own ONNX segmentation model (``radfeat models add-onnx --task segmentation``) -----------------

ACTIVATIONS = ("sigmoid", "softmax", "none")


def segmentation_settings(path: Path, extra: dict, input_size: int, labels: list[str] | None,
                          activation: str) -> dict:
    """Check a registered ONNX model as a segmentation model; the settings the anatomy type needs.

    Its one output must be per-class maps: ``N × C × H × W`` (``N × H × W × C`` for an NHWC model) or
    ``N × H × W`` (one class).  ``activation``: ``sigmoid`` (the output is logits, mask = logit > 0),
    ``softmax`` (mask of class c = argmax over classes is c) or ``none`` (probabilities, mask = p > 0.5).
    """
    import onnxruntime as ort
    from radfeat.extractors.onnx_model import OnnxModelError

    if activation not in ACTIVATIONS:
        raise OnnxModelError(f"--activation must be one of: {', '.join(ACTIVATIONS)}")
    if len(extra["outputs"]) != 1 or extra["pool"] != "none":
        raise OnnxModelError("a segmentation model needs exactly one output (--outputs NAME) and no --pool")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probe = np.zeros((extra["batch"] or 1, extra["channels"], input_size, input_size), dtype=np.float32)
    if extra["layout"] == "NHWC":
        probe = probe.transpose(0, 2, 3, 1).copy()
    out = np.asarray(sess.run(extra["outputs"], {extra["input"]: probe})[0])
    if out.ndim == 3:
        classes, height, width = 1, out.shape[1], out.shape[2]
    elif out.ndim == 4:
        classes = out.shape[3] if extra["layout"] == "NHWC" else out.shape[1]
        height, width = (out.shape[1], out.shape[2]) if extra["layout"] == "NHWC" else (out.shape[2], out.shape[3])
    else:
        raise OnnxModelError(f"output '{extra['outputs'][0]}' has shape {list(out.shape)}; a segmentation model "
                             "gives N × classes × H × W (or N × H × W)")
    names = list(labels) if labels else [f"class {i + 1}" for i in range(classes)]
    if len(names) != classes:
        raise OnnxModelError(f"--labels names {len(names)} structure(s); the model gives {classes} class map(s)")
    if activation == "softmax" and classes < 2:
        raise OnnxModelError("--activation softmax needs at least two class maps")
    return {"task": "segmentation", "labels": names, "activation": activation, "mask_size": [int(height), int(width)]}


def masks_from_output(out: np.ndarray, layout: str, activation: str) -> np.ndarray:
    """Boolean ``N × C × H × W`` masks from a registered segmentation model's raw output."""
    out = np.asarray(out)
    if out.ndim == 3:
        out = out[:, None]
    elif layout == "NHWC":
        out = out.transpose(0, 3, 1, 2)
    if activation == "sigmoid":
        return out > 0
    if activation == "softmax":
        winner = out.argmax(axis=1)
        return winner[:, None] == np.arange(out.shape[1])[None, :, None, None]
    return out > 0.5
