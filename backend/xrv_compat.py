"""Import TorchXRayVision on a CPU-only torch, in one explained place.

TorchXRayVision imports ``torchvision`` at import time, but only *uses* it for
models radfeat never builds (ResNet baselines) and dataset helpers.  On machines
where the only ``torchvision`` wheel matching the pinned torch is a CUDA build,
``import torchvision`` fails with ``operator torchvision::nms does not exist``
(its compiled ops cannot load next to the CPU torch).  When that happens, and
only then, we register a small inert stand-in for ``torchvision`` so that
TorchXRayVision's DenseNet — pure ``torch.nn`` code — imports and runs exactly
as upstream.  Anything that really needs torchvision raises a clear error.
"""

from __future__ import annotations

import sys
import types
from typing import Any

_STUB_NOTE = (
    "torchvision could not be imported next to this torch build; radfeat only needs "
    "TorchXRayVision's DenseNet, which does not use it"
)


class _Unavailable(types.ModuleType):
    """A module whose every attribute access explains why torchvision is missing."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(f"{self.__name__}.{name} is unavailable: {_STUB_NOTE}")


def _install_torchvision_stub() -> None:
    for key in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
        del sys.modules[key]
    root = _Unavailable("torchvision")
    root.__path__ = []  # behave as a package so ``import torchvision.models`` works
    root.__radfeat_stub__ = True
    sys.modules["torchvision"] = root
    for sub in ("transforms", "models", "models.resnet"):
        mod = _Unavailable(f"torchvision.{sub}")
        mod.__path__ = []
        sys.modules[f"torchvision.{sub}"] = mod
        parent = sys.modules[f"torchvision.{sub.rpartition('.')[0]}"] if "." in sub else root
        object.__setattr__(parent, sub.rpartition(".")[2], mod)


def import_xrv() -> types.ModuleType:
    """Return the ``torchxrayvision`` module, working around a broken torchvision."""
    if "torchxrayvision" in sys.modules:
        return sys.modules["torchxrayvision"]
    try:
        import torchvision  # noqa: F401
    except ImportError:
        _install_torchvision_stub()
    except RuntimeError as exc:  # "operator torchvision::nms does not exist"
        if "torchvision::" not in str(exc):
            raise
        _install_torchvision_stub()
    import torchxrayvision

    return torchxrayvision
