"""Import TorchXRayVision on a CPU-only torch, in one explained place.

TorchXRayVision imports ``torchvision`` at import time, but only *uses* it for
its ResNet classifiers (``torchvision.models.resnet50``/``resnet101``) and dataset
helpers.  On machines where the only ``torchvision`` wheel matching the pinned torch
is a CUDA build, ``import torchvision`` fails with ``operator torchvision::nms does
not exist`` (its compiled ops cannot load next to the CPU torch).  When that happens,
and only then, we register a small stand-in for ``torchvision`` so that
TorchXRayVision's DenseNet — pure ``torch.nn`` code — imports and runs exactly as
upstream.  The stand-in also provides ``torchvision.models.resnet50``/``resnet101``:
a plain ``torch.nn`` re-implementation of torchvision's ResNet (v1.5 Bottleneck,
stride on the 3×3 convolution) with the same module names, hence the same state-dict
keys and the same numbers, so ``xrv.models.ResNet`` works, and ``transforms.Compose`` /
``transforms.Normalize`` (tensor maths as torchvision's), which ChestX-Det's PSPNet uses.  Anything else that really
needs torchvision raises a clear error.
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


def _conv3x3(cin: int, cout: int, stride: int = 1):
    from torch import nn

    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1):
    from torch import nn

    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


def _resnet_classes() -> tuple[type, type]:
    """torchvision's ``Bottleneck`` and ``ResNet`` (as of torchvision 0.28), in plain ``torch.nn``.

    Longer than 60 lines on purpose: two class bodies, defined inside a function so that torch is imported
    only when a stand-in is needed."""
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
            super().__init__()
            self.conv1 = _conv1x1(inplanes, planes)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = _conv3x3(planes, planes, stride)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = _conv1x1(planes, planes * self.expansion)
            self.bn3 = nn.BatchNorm2d(planes * self.expansion)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            if self.downsample is not None:
                identity = self.downsample(x)
            out += identity
            return self.relu(out)

    class ResNet(nn.Module):
        def __init__(self, block: type, layers: list[int], num_classes: int = 1000):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            self.layer1 = self._make_layer(block, 64, layers[0])
            self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
            self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
            self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512 * block.expansion, num_classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)

        def _make_layer(self, block: type, planes: int, blocks: int, stride: int = 1):
            downsample = None
            if stride != 1 or self.inplanes != planes * block.expansion:
                downsample = nn.Sequential(_conv1x1(self.inplanes, planes * block.expansion, stride),
                                           nn.BatchNorm2d(planes * block.expansion))
            layers = [block(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes * block.expansion
            layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return Bottleneck, ResNet


def _resnet_factory(layers: list[int]):
    def build(*, weights: Any = None, progress: bool = True, num_classes: int = 1000, **kwargs: Any):
        if weights is not None:
            raise ImportError(f"pretrained torchvision weights are unavailable: {_STUB_NOTE}")
        if kwargs:
            raise ImportError(f"torchvision ResNet options {sorted(kwargs)} are unavailable: {_STUB_NOTE}")
        bottleneck, resnet = _resnet_classes()
        return resnet(bottleneck, layers, num_classes=num_classes)

    return build


def _transforms_classes() -> tuple[type, type]:
    """``Compose`` and tensor ``Normalize`` as torchvision defines them (ChestX-Det's PSPNet uses both)."""
    import torch

    class Compose:
        def __init__(self, transforms: list) -> None:
            self.transforms = list(transforms)

        def __call__(self, x: Any) -> Any:
            for t in self.transforms:
                x = t(x)
            return x

    class Normalize(torch.nn.Module):
        def __init__(self, mean: Any, std: Any, inplace: bool = False) -> None:
            super().__init__()
            self.mean, self.std = list(mean), list(std)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # torchvision.transforms.functional.normalize
            mean = torch.as_tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
            std = torch.as_tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
            return x.sub(mean).div(std)

    return Compose, Normalize


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
    compose, normalize = _transforms_classes()
    object.__setattr__(sys.modules["torchvision.transforms"], "Compose", compose)
    object.__setattr__(sys.modules["torchvision.transforms"], "Normalize", normalize)
    for holder in (sys.modules["torchvision.models"], sys.modules["torchvision.models.resnet"]):
        object.__setattr__(holder, "resnet50", _resnet_factory([3, 4, 6, 3]))
        object.__setattr__(holder, "resnet101", _resnet_factory([3, 4, 23, 3]))


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
