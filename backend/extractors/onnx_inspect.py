"""Registering an ONNX model (``radfeat models add-onnx``): what its one image input and its outputs are.

:func:`inspect_model` reads the input — layout ``NCHW`` or ``NHWC``, channels, size, fixed or dynamic
batch — checks it against the given preprocessing, can *cut* the model by naming intermediate tensors
as outputs (they are added to the graph's outputs, which needs the ``onnx`` package), runs it once on a
blank image to learn every output's size, and returns the settings the user catalog stores.  The
``onnx`` extraction type (:mod:`radfeat.extractors.onnx_model`) runs what is registered here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from radfeat.errors import InvalidInput
from radfeat.extractors.declarations.onnx_model import CROPS, POOLS


class OnnxModelError(InvalidInput, ValueError):
    """The ONNX model or its settings cannot be used; the message says why."""


def column_family(output: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", output).strip("_")
    return name or "output"


def _dim(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def _floats(values: Sequence[float] | None, n: int, what: str, default: float) -> list[float]:
    if values is None or len(values) == 0:
        return [default] * n
    vals = [float(v) for v in values]
    if len(vals) not in (1, n):
        raise OnnxModelError(f"--{what} needs 1 or {n} values (one per channel), got {len(vals)}")
    if what == "std" and any(v == 0 for v in vals):
        raise OnnxModelError("--std values must not be 0")
    return vals * n if len(vals) == 1 else vals


def _add_outputs(model_path: Path, names: Sequence[str], dest: Path) -> None:
    """Save a copy of the model whose graph also outputs the intermediate tensors ``names``."""
    try:
        import onnx  # optional (the export extra): only a cut needs it
    except ImportError:
        raise OnnxModelError("naming intermediate tensors as outputs needs the 'onnx' package "
                             "(pip install onnx)") from None
    model = onnx.load(str(model_path))
    produced = {o for node in model.graph.node for o in node.output}
    missing = [n for n in names if n not in produced]
    if missing:
        raise OnnxModelError(f"the model has no tensor named {', '.join(repr(m) for m in missing)}")
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
        infos = {vi.name: vi for vi in inferred.graph.value_info}
    except Exception:  # shape inference is best effort; the type defaults to float
        infos = {}
    for name in names:
        model.graph.output.append(infos.get(name) or onnx.helper.make_tensor_value_info(
            name, onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(dest))


def inspect_model(path: Path, *, input_size: int | None, channels: int | None, mean: Sequence[float] | None,
                  std: Sequence[float] | None, scale: float, outputs: Sequence[str] | None, crop: str, pool: str,
                  workdir: Path) -> tuple[Path, int, dict[str, Any]]:
    """Check an ONNX model and its preprocessing; return the file to store, the input size and the settings."""
    _check_settings(crop, pool, scale)
    sess = _session(path, path)
    available = [o.name for o in sess.get_outputs()]
    wanted = list(outputs) if outputs else available
    if len(set(wanted)) != len(wanted):
        raise OnnxModelError("--outputs names an output twice")
    stored = Path(path)
    extra_names = [n for n in wanted if n not in available]
    if extra_names:
        stored = workdir / "cut.onnx"
        _add_outputs(Path(path), extra_names, stored)
        sess = _session(stored, path)
    inp, layout, channels, input_size, batch = _image_input(sess, channels, input_size)
    sizes = _output_sizes(sess, inp.name, wanted, layout, channels, input_size, batch, pool)
    families = [column_family(n) for n in wanted]
    if len(set(families)) != len(families):
        raise OnnxModelError(f"output names {wanted} give the same column names; choose other outputs")
    extra = {
        "input": inp.name, "layout": layout, "channels": channels, "batch": batch,
        "mean": _floats(mean, channels, "mean", 0.0), "std": _floats(std, channels, "std", 1.0),
        "scale": float(scale), "crop": crop, "pool": pool, "outputs": wanted,
        "families": dict(zip(wanted, families, strict=True)), "sizes": sizes,
    }
    return stored, input_size, extra


def _check_settings(crop: str, pool: str, scale: float) -> None:
    if crop not in CROPS:
        raise OnnxModelError(f"--crop must be one of: {', '.join(CROPS)}")
    if pool not in POOLS:
        raise OnnxModelError(f"--pool must be one of: {', '.join(POOLS)}")
    if not (isinstance(scale, (int, float)) and scale > 0):
        raise OnnxModelError("--scale must be a positive number")


def _session(model: Path, shown: Path) -> Any:
    """A CPU session for inspection (the run's own session is :class:`radfeat.weights.session.OnnxSession`)."""
    try:
        return ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise OnnxModelError(f"ONNX Runtime cannot load {Path(shown).name}: {exc}") from None


def _layout(shape: list[Any]) -> str:
    """``NCHW`` or ``NHWC``, read off which axis holds 1 or 3 channels."""
    d1, d3 = _dim(shape[1]), _dim(shape[3])
    if d1 in (1, 3) and d3 not in (1, 3):
        return "NCHW"
    if d3 in (1, 3) and d1 not in (1, 3):
        return "NHWC"
    if d1 is None and d3 is None:
        return "NCHW"
    return "NCHW" if d1 in (1, 3) else "NHWC"


def _image_input(sess: Any, channels: int | None, input_size: int | None) -> tuple[Any, str, int, int, int | None]:
    """The one image input: ``(input, layout, channels, input size, fixed batch or None)``."""
    inputs = sess.get_inputs()
    if len(inputs) != 1:
        raise OnnxModelError(f"the model has {len(inputs)} inputs; radfeat feeds it one image tensor")
    inp = inputs[0]
    if inp.type != "tensor(float)":
        raise OnnxModelError(f"the model's input '{inp.name}' is {inp.type}; radfeat feeds float32 images")
    shape = list(inp.shape)
    if len(shape) != 4:
        raise OnnxModelError(f"the model's input '{inp.name}' has shape {shape}; an image batch "
                             "(N, C, H, W) or (N, H, W, C) is needed")
    layout = _layout(shape)
    model_c = _dim(shape[1] if layout == "NCHW" else shape[3])
    if model_c is not None and channels is not None and channels != model_c:
        raise OnnxModelError(f"the model takes {model_c} channel(s), --channels is {channels}")
    channels = model_c or channels or 3
    if channels not in (1, 3):
        raise OnnxModelError(f"the model takes {channels} channels; radfeat feeds 1 (grey) or 3 (RGB)")
    hw = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    return inp, layout, channels, _input_size(_dim(hw[0]), _dim(hw[1]), input_size), _dim(shape[0])


def _input_size(h: int | None, w: int | None, given: int | None) -> int:
    if h is not None and w is not None:
        if h != w:
            raise OnnxModelError(f"the model takes {h}×{w} images; radfeat feeds square images")
        if given is not None and given != h:
            raise OnnxModelError(f"the model takes {h}×{h} images, --input-size is {given}")
        given = h
    if given is None:
        raise OnnxModelError("--input-size is needed (the model accepts several image sizes)")
    if not 8 <= given <= 4096:
        raise OnnxModelError("--input-size must be between 8 and 4096")
    return given


def _output_sizes(sess: Any, input_name: str, wanted: list[str], layout: str, channels: int, input_size: int,
                  batch: int | None, pool: str) -> dict[str, int]:
    """Run the model once on a blank image: the number of columns of every chosen output."""
    probe = np.zeros((batch or 1, channels, input_size, input_size), dtype=np.float32)
    if layout == "NHWC":
        probe = probe.transpose(0, 2, 3, 1).copy()
    try:
        results = sess.run(wanted, {input_name: probe})
    except Exception as exc:
        raise OnnxModelError(f"the model does not run on a {input_size}×{input_size} image: {exc}") from None
    sizes: dict[str, int] = {}
    for name, arr in zip(wanted, results, strict=True):
        arr = np.asarray(arr)
        if arr.dtype.kind not in "fiub" or arr.ndim < 1 or arr.shape[0] != probe.shape[0]:
            raise OnnxModelError(f"output '{name}' is not a numeric tensor with one row per image "
                                 f"({arr.dtype}, shape {arr.shape})")
        sizes[name] = int(pool_output(arr, pool, layout).reshape(arr.shape[0], -1).shape[1])
    return sizes


def pool_output(arr: np.ndarray, pool: str, layout: str) -> np.ndarray:
    """Global pooling over the spatial axes of a (N, C, *spatial) — or (N, *spatial, C) — output."""
    if pool == "none" or arr.ndim < 3:
        return arr
    axes = tuple(range(2, arr.ndim)) if layout == "NCHW" else tuple(range(1, arr.ndim - 1))
    return arr.mean(axis=axes) if pool == "avg" else arr.max(axis=axes)


