"""The model store: what is downloaded and exported, and registering a user's own checkpoint or ONNX model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from radfeat.errors import InvalidInput
from radfeat.extractors import registry
from radfeat.extractors.onnx_inspect import inspect_model
from radfeat.output.atomic import atomic_path
from radfeat.weights.catalog import Catalog, WeightSet, default_pathologies
from radfeat.weights.digest import sha256_file
from radfeat.weights.export import is_exported


class RegistrationError(InvalidInput, ValueError):
    """A weight set or model cannot be registered under that name or from that file."""


def status(catalog: Catalog | None = None) -> list[dict[str, Any]]:
    """One row per weight set: name, labels trained, downloaded, exported, size on disk."""
    catalog = catalog or Catalog()
    rows = []
    for wset in catalog.entries():
        rows.append({
            "name": wset.name,
            "architecture": wset.architecture,
            "type": registry.kind_of(wset.architecture),
            "description": wset.description,
            "labels": list(wset.labels),
            "trained_labels": wset.trained_labels,
            "downloaded": wset.downloaded,
            "exported": is_exported(wset),
            "size": wset.path.stat().st_size if wset.downloaded else wset.size,
            "source": wset.source,
            "default": wset.name == catalog.default,
        })
    return rows


def _check_name(name: str, catalog: Catalog) -> None:
    from radfeat.weights.catalog_schema import check_name

    problem = check_name(name)
    if problem:
        raise RegistrationError(problem[0].upper() + problem[1:])
    if name in catalog and catalog.get(name).source == "catalog":
        raise RegistrationError(f"'{name}' is a catalog weight set; choose another name")


def add_weights(name: str, source: Path, *, log=print) -> WeightSet:
    """Register a user's TorchXRayVision checkpoint under ``name`` (copied into the home folder).

    DenseNets (pickled TorchXRayVision model or state dict) as before; ResNet-50/101 classifiers and
    ResNet autoencoders as state dicts (their architecture is read off the keys).
    """
    from radfeat.weights.architectures import detect_architecture  # torch: only when a checkpoint is added
    from radfeat.weights.checkpoint import build_model, load_checkpoint

    catalog = Catalog()
    _check_name(name, catalog)
    source = Path(source).expanduser()
    if not source.is_file():
        raise RegistrationError(f"Checkpoint not found: {source}")
    ckpt = load_checkpoint(source, None)  # restricted unpickling: refuses anything but tensors and module state
    if detect_architecture(ckpt.state_dict) != "densenet121":
        return _add_encoder(name, source, ckpt, detect_architecture(ckpt.state_dict), log)
    ckpt = load_checkpoint(source)
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


def _add_encoder(name: str, source: Path, ckpt: Any, arch: str, log: Any) -> WeightSet:
    """A user ResNet classifier (512 × 512, TorchXRayVision's input) or ResNet autoencoder (224 × 224)."""
    from radfeat.weights.architectures import build, strip_prefix  # torch, as above

    state = strip_prefix(ckpt.state_dict, "model.")
    size = 224 if arch == "resnet-ae" else 512
    thr = None
    labels: list[str] = []
    if arch != "resnet-ae":
        n = int(state["fc.weight"].shape[0])
        labels = list(ckpt.pathologies or (default_pathologies() if n == len(default_pathologies()) else
                                           [f"class_{i}" for i in range(n)]))
        labels = (labels + [""] * n)[:n]
        if ckpt.op_threshs is not None and len(ckpt.op_threshs) == n:
            thr = ckpt.op_threshs
            labels = ["" if t != t else label for label, t in zip(labels, thr, strict=True)]
    build(ckpt, arch, thr, ckpt.apply_sigmoid, size)  # proves TorchXRayVision can run it
    entry = WeightSet(
        name=name, file=f"user-{name}.pt", labels=tuple(labels),
        op_threshs=None if thr is None else tuple(None if t != t else t for t in thr),
        sha256=sha256_file(source), size=source.stat().st_size, apply_sigmoid=ckpt.apply_sigmoid,
        input_size=size, architecture=arch, description=f"User {arch} checkpoint from {source.name}", source="user",
    )
    with atomic_path(entry.path) as tmp:
        shutil.copyfile(source, tmp)
    Catalog().register(entry)
    log(f"Registered '{name}' ({arch}, {f'{len(labels)} outputs' if labels else 'latent code'})")
    return entry


def add_onnx(name: str, source: Path, *, input_size: int | None = None, channels: int | None = None,
             mean: list[float] | None = None, std: list[float] | None = None, scale: float = 255.0,
             outputs: list[str] | None = None, crop: str = "none", pool: str = "none", log: Any = print,
             task: str = "features", labels: list[str] | None = None, activation: str = "sigmoid") -> WeightSet:
    """Register any ONNX image model with its preprocessing and the outputs to extract (radfeat.extractors.onnx_model).

    ``task="segmentation"``: the model's one output is per-class maps, measured by the ``anatomy`` type
    (:func:`radfeat.weights.segmentation.segmentation_settings`; ``labels`` names the classes).
    """
    import tempfile

    catalog = Catalog()
    _check_name(name, catalog)
    source = Path(source).expanduser()
    if not source.is_file():
        raise RegistrationError(f"ONNX model not found: {source}")
    from radfeat.weights.home import scratch_dir

    with tempfile.TemporaryDirectory(prefix="radfeat-onnx-", dir=scratch_dir()) as work:  # never $TMPDIR
        stored, size, extra = inspect_model(source, input_size=input_size, channels=channels, mean=mean, std=std,
                                            scale=scale, outputs=outputs, crop=crop, pool=pool, workdir=Path(work))
        if task == "segmentation":
            from radfeat.weights.segmentation import segmentation_settings

            extra.update(segmentation_settings(stored, extra, size, labels, activation))
        elif task != "features":
            from radfeat.extractors.onnx_model import OnnxModelError

            raise OnnxModelError("--task must be features or segmentation")
        extra["source_file"] = source.name
        extra["source_sha256"] = sha256_file(source)
        entry = WeightSet(
            name=name, file=f"user-{name}.onnx", sha256=sha256_file(stored), size=stored.stat().st_size,
            input_size=size, architecture="segmentation-onnx" if task == "segmentation" else "onnx", labels=tuple(extra.get("labels", ())),
            description=f"User ONNX {'segmentation ' if task == 'segmentation' else ''}model from {source.name}",
            source="user", extra=extra,
        )
        with atomic_path(entry.path) as tmp:
            shutil.copyfile(stored, tmp)
    catalog.register(entry)
    sizes = ", ".join(f"{k} ({v})" for k, v in extra["sizes"].items())
    log(f"Registered ONNX model '{name}': {extra['layout']} {extra['channels']}-channel {size}×{size} input, "
        f"outputs {sizes}")
    return entry
