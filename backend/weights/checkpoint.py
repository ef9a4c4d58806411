"""Load TorchXRayVision checkpoints without running any code they contain.

Checkpoints are pickles.  A pickle names globals and asks the loader to call
them, which is how a malicious file runs code.  Here every global resolves
either to a short allow-list of harmless tensor-rebuilding callables, or, for
module classes (``torch.nn.modules.*``, ``torchxrayvision.*`` and DenseNet
layer classes), to an inert :class:`_ModuleRecord` that only stores the state it
is given.  Any other global refuses the file.  From the records we read the
state dict and the ``pathologies`` / ``op_threshs`` / ``apply_sigmoid``
attributes, then build TorchXRayVision's own DenseNet from them.
"""

from __future__ import annotations

import _compat_pickle
import collections
import math
import os
import pickle
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from radfeat.errors import RadfeatError
from radfeat.weights.digest import sha256_file  # noqa: F401  (re-exported for callers)

_DENSENET_CLASSES = {"DenseNet", "_DenseBlock", "_DenseLayer", "_Transition"}
_MODULE_PREFIXES = ("torch.nn.modules.", "torchxrayvision.")


class CheckpointError(RadfeatError, ValueError):
    """The file is not a checkpoint radfeat can use, or refers to code it will not run."""


class _Refused(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list."""


class _ModuleRecord:
    """Inert stand-in for a pickled ``nn.Module``: it only remembers its state."""

    _qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self._state = state if isinstance(state, dict) else {}


def _allowed_callables() -> dict[tuple[str, str], Any]:
    import torch._utils as tu

    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
    }
    for fn in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_parameter", "_rebuild_parameter_with_state"):
        if hasattr(tu, fn):
            allowed[("torch._utils", fn)] = getattr(tu, fn)
    for dtype in ("float32", "float64", "float16", "bfloat16", "int64", "int32", "uint8", "bool"):
        allowed[("torch", dtype)] = getattr(torch, dtype)
    return allowed


_ALLOWED = _allowed_callables()
_RECORD_CLASSES: dict[str, type] = {}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        if (module, name) in _compat_pickle.NAME_MAPPING:  # protocol-2 pickles spell builtins the Python 2 way
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module.startswith(_MODULE_PREFIXES) or name in _DENSENET_CLASSES:
            qual = f"{module}.{name}"
            if qual not in _RECORD_CLASSES:
                _RECORD_CLASSES[qual] = type(name, (_ModuleRecord,), {"_qualname": qual})
            return _RECORD_CLASSES[qual]
        raise _Refused(
            f"refuses to load: the file asks for '{module}.{name}', which is not part of a model checkpoint"
        )


# A pickle_module for torch.load: only the Unpickler is restricted; ``load`` is used by
# torch for the legacy (pre-1.6) file header and must be restricted too.
_safe_pickle = types.ModuleType("radfeat_safe_pickle")
_safe_pickle.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
_safe_pickle.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]
_safe_pickle.load = lambda f, **kw: _RestrictedUnpickler(f, **kw).load()  # type: ignore[attr-defined]
_safe_pickle.__name__ = "pickle"


@dataclass
class Checkpoint:
    """What radfeat takes from a checkpoint file."""

    state_dict: dict[str, torch.Tensor]
    pathologies: list[str] | None
    op_threshs: list[float] | None
    apply_sigmoid: bool
    kind: str  # "module" (TorchXRayVision pickled model) or "state_dict"

    @property
    def num_classes(self) -> int:
        return int(self.state_dict["classifier.weight"].shape[0])


MAX_MODULE_DEPTH = 64  # a DenseNet-121 nests 4 levels; a self-referencing or 5,000-deep file is refused


def _collect_state(record: _ModuleRecord, prefix: str, out: dict[str, torch.Tensor],
                   seen: set[int] | None = None) -> None:
    seen = set() if seen is None else seen
    if id(record) in seen:
        raise CheckpointError("the checkpoint's modules refer to themselves (not a model)")
    if prefix.count(".") > MAX_MODULE_DEPTH:
        raise CheckpointError(f"the checkpoint's modules nest deeper than {MAX_MODULE_DEPTH} levels (not a model)")
    seen.add(id(record))
    state = record._state
    for key in ("_parameters", "_buffers"):
        params = state.get(key)
        for name, value in (params.items() if isinstance(params, dict) else ()):
            if isinstance(value, torch.Tensor) and not (key == "_buffers" and name == "op_threshs"):
                out[prefix + str(name)] = value.detach().clone()
    modules = state.get("_modules")
    for name, child in (modules.items() if isinstance(modules, dict) else ()):
        if isinstance(child, _ModuleRecord):
            _collect_state(child, f"{prefix}{name}.", out, seen)


def _to_float_list(value: Any) -> list[float] | None:
    if isinstance(value, torch.Tensor):
        return [float(v) for v in value.detach().reshape(-1).tolist()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
        return [float(v) for v in value]
    return None


def _unwrap(obj: Any) -> Any:
    """Accept ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers commonly produced by training code."""
    if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("model", "state_dict", "model_state_dict"):
            if key in obj:
                return obj[key]
    return obj


# State-dict keys that identify each architecture radfeat can build (see radfeat.weights.architectures for the others).
REQUIRED_KEYS = {
    "densenet": ("classifier.weight", "features.conv0.weight"),
    "resnet": ("conv1.weight", "layer4.0.conv1.weight", "fc.weight"),
    "resnet-ae": ("conv1.weight", "layer4.0.conv1.weight", "uplayer1.0.conv1.weight", "conv1_1.weight"),
    "pspnet": ("convbnrelu1_1.cbr_unit.0.weight", "pyramid_pooling.path_module_list.0.cbr_unit.0.weight",
               "classification.weight"),
}


def load_checkpoint(path: Path, architecture: str | None = "densenet") -> Checkpoint:
    """Read a TorchXRayVision checkpoint (pickled model or plain state dict), safely.

    ``architecture`` (``densenet``, ``resnet``, ``resnet-ae``) names the state-dict keys that must be
    present; ``None`` accepts any tensors (the caller identifies the architecture).
    """
    path = Path(path)
    _check_container(path)
    try:
        obj = torch.load(path, map_location="cpu", pickle_module=_safe_pickle, weights_only=False)
    except _Refused as exc:
        raise CheckpointError(f"{path.name}: {exc}") from None
    except RecursionError:
        raise CheckpointError(f"{path.name}: nested too deeply to be a model checkpoint") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, AttributeError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{path.name}: not a readable PyTorch checkpoint ({exc})") from None
    try:
        return _read_records(path, _unwrap(obj), architecture)
    except RecursionError:
        raise CheckpointError(f"{path.name}: nested too deeply to be a model checkpoint") from None
    except CheckpointError as exc:
        raise CheckpointError(str(exc) if str(exc).startswith(path.name) else f"{path.name}: {exc}") from None


_LEGACY_MEMBERS = {"sys_info", "pickle", "storages", "tensors"}


def _check_container(path: Path) -> None:
    """Refuse what is not a regular file, and legacy tar checkpoints holding anything but regular members.

    (torch extracts a legacy tar's ``storages`` member to disk and opens it: a FIFO there would hang.)
    """
    import stat
    import tarfile

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise CheckpointError(f"{path.name}: not a regular file")
        if not tarfile.is_tarfile(path):
            return
        with tarfile.open(path, "r:") as tar:
            for member in tar.getmembers():
                if not member.isreg() or member.name not in _LEGACY_MEMBERS:
                    raise CheckpointError(f"{path.name}: a legacy (tar) checkpoint may hold only the regular files "
                                          f"{', '.join(sorted(_LEGACY_MEMBERS))}; found {member.name!r}")
    except (OSError, tarfile.TarError) as exc:
        raise CheckpointError(f"{path.name}: cannot be read ({exc})") from None


def _read_records(path: Path, obj: Any, architecture: str | None) -> Checkpoint:
    pathologies: list[str] | None = None
    op_threshs: list[float] | None = None
    apply_sigmoid = False
    if isinstance(obj, _ModuleRecord):
        state: dict[str, torch.Tensor] = {}
        _collect_state(obj, "", state)
        attrs = obj._state
        raw_labels = attrs.get("pathologies", attrs.get("targets"))
        if isinstance(raw_labels, (list, tuple)) and all(isinstance(x, str) for x in raw_labels):
            pathologies = list(raw_labels)
        op_threshs = _to_float_list(attrs.get("op_threshs"))
        if op_threshs is None:
            op_threshs = _to_float_list((attrs.get("_buffers") or {}).get("op_threshs"))
        apply_sigmoid = bool(attrs.get("apply_sigmoid", False))
        kind = "module"
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = {k.removeprefix("module."): v for k, v in obj.items()}
        if "op_threshs" in state:
            op_threshs = _to_float_list(state.pop("op_threshs"))
        kind = "state_dict"
    else:
        raise CheckpointError(
            f"{path.name}: not a TorchXRayVision {'DenseNet' if architecture == 'densenet' else 'model'} "
            f"checkpoint (found {type(obj).__name__})"
        )
    if architecture == "densenet" and ("classifier.weight" not in state or "features.conv0.weight" not in state):
        raise CheckpointError(f"{path.name}: not a DenseNet checkpoint (no features.conv0 / classifier weights)")
    if architecture not in (None, "densenet") and any(k not in state for k in REQUIRED_KEYS[architecture]):
        raise CheckpointError(f"{path.name}: not a TorchXRayVision {architecture} checkpoint "
                              f"(no {', '.join(REQUIRED_KEYS[architecture])} weights)")
    if op_threshs is not None and all(math.isnan(t) for t in op_threshs):
        op_threshs = None
    return Checkpoint(state, pathologies, op_threshs, apply_sigmoid, kind)


@dataclass(frozen=True)
class DenseNetConfig:
    growth_rate: int
    block_config: tuple[int, ...]
    num_init_features: int
    bn_size: int
    in_channels: int
    num_classes: int


def infer_config(state: dict[str, torch.Tensor]) -> DenseNetConfig:
    """Read the DenseNet hyper-parameters off the tensor shapes (DenseNet-121 or smaller test nets)."""
    conv0 = state["features.conv0.weight"]
    blocks: list[int] = []
    i = 1
    while any(k.startswith(f"features.denseblock{i}.") for k in state):
        n = 0
        while f"features.denseblock{i}.denselayer{n + 1}.conv2.weight" in state:
            n += 1
        blocks.append(n)
        i += 1
    if not blocks:
        raise CheckpointError("not a DenseNet checkpoint (no dense blocks)")
    conv1 = state["features.denseblock1.denselayer1.conv1.weight"]
    conv2 = state["features.denseblock1.denselayer1.conv2.weight"]
    growth = int(conv2.shape[0])
    return DenseNetConfig(
        growth_rate=growth,
        block_config=tuple(blocks),
        num_init_features=int(conv0.shape[0]),
        bn_size=int(conv1.shape[0]) // growth,
        in_channels=int(conv0.shape[1]),
        num_classes=int(state["classifier.weight"].shape[0]),
    )


def build_model(ckpt: Checkpoint, op_threshs: list[float] | None, apply_sigmoid: bool) -> torch.nn.Module:
    """TorchXRayVision's own DenseNet with the checkpoint's weights, in eval mode."""
    from radfeat.xrv_compat import import_xrv  # TorchXRayVision: only for pickled models

    xrv = import_xrv()
    cfg = infer_config(ckpt.state_dict)
    model = xrv.models.DenseNet(
        growth_rate=cfg.growth_rate,
        block_config=cfg.block_config,
        num_init_features=cfg.num_init_features,
        bn_size=cfg.bn_size,
        num_classes=cfg.num_classes,
        in_channels=cfg.in_channels,
        apply_sigmoid=apply_sigmoid,
    )
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not fit a TorchXRayVision DenseNet: {exc}") from None
    if op_threshs is not None:
        model.op_threshs = torch.tensor(op_threshs, dtype=torch.float32)
    return model.eval()
