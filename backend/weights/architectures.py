"""TorchXRayVision's other encoders, built from safely loaded weights: ResNet classifiers and the ResNet autoencoder.

* ``resnet50`` / ``resnet101`` — ``xrv.models.ResNet``: a torchvision ResNet with a one-channel
  ``conv1``; ``features(x)`` is the 2048-long pooled output of ``layer4`` and ``forward(x)`` the
  calibrated predictions.  TorchXRayVision's own constructor downloads and unpickles the file itself,
  so we create the object without it and set the same attributes it would (the network, the
  operating thresholds, ``input_resolution``); every forward method is TorchXRayVision's.
* ``resnet-ae`` — ``xrv.autoencoders._ResNetAE`` (``ResNetAE101`` for ``101-elastic``); the file is a
  plain state dict (TorchXRayVision reads it with ``weights_only=True``).  ``encode(x)`` gives the
  ``512 × 3 × 3`` latent code at 224.  The block counts are read off the state dict, so smaller
  test networks work too.

Weights always come through :func:`radfeat.weights.checkpoint.load_checkpoint` (restricted unpickling).
"""

from __future__ import annotations

import re
from typing import Any

import torch
from radfeat.weights.checkpoint import Checkpoint, CheckpointError, build_model

_RESNET_DEPTH = {(3, 4, 6, 3): "resnet50", (3, 4, 23, 3): "resnet101"}


def checkpoint_family(architecture: str) -> str:
    """``densenet121`` → ``densenet``, ``resnet50``/``resnet101`` → ``resnet``, ``resnet-ae`` → ``resnet-ae``."""
    if architecture.startswith("densenet"):
        return "densenet"
    if architecture == "resnet-ae":
        return "resnet-ae"
    if architecture.startswith("resnet"):
        return "resnet"
    raise ValueError(f"unknown architecture {architecture!r}")


def strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def block_counts(state: dict[str, torch.Tensor], prefix: str = "layer") -> tuple[int, ...]:
    """Number of residual blocks in ``layer1..layer4`` of a ResNet state dict."""
    counts = []
    for i in range(1, 5):
        pat = re.compile(rf"{prefix}{i}\.(\d+)\.")
        idx = {int(m.group(1)) for k in state if (m := pat.match(k))}
        counts.append(max(idx) + 1 if idx else 0)
    return tuple(counts)


def detect_architecture(state: dict[str, torch.Tensor]) -> str:
    """Which TorchXRayVision network a state dict belongs to (``densenet121``, ``resnet50``, ...)."""
    state = strip_prefix(state, "model.")
    if "features.conv0.weight" in state and "classifier.weight" in state:
        return "densenet121"
    if "uplayer1.0.conv1.weight" in state and "conv1_1.weight" in state:
        return "resnet-ae"
    if "fc.weight" in state and "layer4.0.conv1.weight" in state:
        arch = _RESNET_DEPTH.get(block_counts(state))
        if arch is None:
            raise CheckpointError(f"a ResNet with blocks {block_counts(state)}; TorchXRayVision builds ResNet-50 "
                                  "(3, 4, 6, 3) and ResNet-101 (3, 4, 23, 3)")
        return arch
    raise CheckpointError("not a TorchXRayVision DenseNet, ResNet or ResNet autoencoder state dict")


def build_resnet(ckpt: Checkpoint, architecture: str, op_threshs: list[float] | None, apply_sigmoid: bool,
                 input_size: int = 512) -> torch.nn.Module:
    """``xrv.models.ResNet`` with the checkpoint's weights, in eval mode (no download, no unpickling)."""
    import sys

    from radfeat.xrv_compat import import_xrv  # TorchXRayVision (and the torchvision stand-in): only to build

    xrv = import_xrv()
    tv = sys.modules["torchvision"].models  # the real torchvision, or xrv_compat's stand-in
    state = strip_prefix(ckpt.state_dict, "model.")
    n = int(state["fc.weight"].shape[0])
    model = xrv.models.ResNet.__new__(xrv.models.ResNet)
    torch.nn.Module.__init__(model)
    model.weights = None
    model.apply_sigmoid = apply_sigmoid
    net = (tv.resnet101 if architecture == "resnet101" else tv.resnet50)(num_classes=n, weights=None)
    net.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)  # as TorchXRayVision does
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not fit a TorchXRayVision {architecture}: {exc}") from None
    model.model = net
    if op_threshs is not None:
        model.register_buffer("op_threshs", torch.tensor(op_threshs, dtype=torch.float32))
    model.input_resolution = input_size
    return model.eval()


def build_autoencoder(ckpt: Checkpoint) -> torch.nn.Module:
    """TorchXRayVision's ResNet autoencoder with the checkpoint's weights, in eval mode."""
    from radfeat.xrv_compat import import_xrv

    xrv = import_xrv()
    ae_mod = xrv.autoencoders
    state = ckpt.state_dict
    layers = list(block_counts(state))
    if 0 in layers:
        raise CheckpointError(f"not a ResNet autoencoder (blocks {tuple(layers)})")
    model = ae_mod._ResNetAE(ae_mod.Bottleneck, ae_mod.DeconvBottleneck, layers, 1)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights do not fit a TorchXRayVision ResNet autoencoder: {exc}") from None
    model.weights = None
    return model.eval()


def build(ckpt: Checkpoint, architecture: str, op_threshs: list[float] | None, apply_sigmoid: bool,
          input_size: int) -> Any:
    """The TorchXRayVision model for ``architecture`` (DenseNets go through radfeat.weights.checkpoint.build_model)."""
    if architecture == "resnet-ae":
        return build_autoencoder(ckpt)
    if architecture in ("resnet50", "resnet101"):
        return build_resnet(ckpt, architecture, op_threshs, apply_sigmoid, input_size)
    return build_model(ckpt, op_threshs, apply_sigmoid)
