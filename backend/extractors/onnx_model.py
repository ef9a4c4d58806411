"""``onnx``: bring your own ONNX image model (registered with ``radfeat models add-onnx``).

Registration (:func:`inspect_model`, called by :func:`radfeat.weights.registration.add_onnx`) reads the model's one
image input — layout ``NCHW`` or ``NHWC``, channels, size, fixed or dynamic batch — checks it against
the given preprocessing, can *cut* the model by naming intermediate tensors as outputs (they are added
to the graph's outputs), runs it once on a blank image to learn every output's size, and stores all of
it in the user catalog.

Extraction reads each image as 8-bit grey (1 channel; first channel, 16-bit scaled) or RGB
(3 channels; grey replicated), optionally crops the centre square, resizes it to ``input_size``
(Pillow bilinear with antialiasing, as ``torchvision.transforms.Resize`` does on PIL images), then
``x = (pixel / scale - mean) / std`` per channel.  Each chosen output, optionally global-pooled over
its spatial axes (``pool`` ``avg`` or ``max``), is flattened in C order into columns
``<prefix>_<output>_<i>`` (the output name with characters other than letters, digits and ``_``
replaced by ``_``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from radfeat.errors import InvalidInput
from radfeat.extractors import registry
from radfeat.extractors.base import BatchResult, Extractor
from radfeat.output.columns import block_names
from radfeat.pipeline.discovery import ImageRef
from radfeat.pipeline.images import center_square, read_gray, read_rgb, to_uint8
from radfeat.weights.readiness import ensure_weights
from radfeat.weights.session import OnnxSession

CROPS = ("none", "center")
POOLS = ("none", "avg", "max")


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
        import onnx
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
    import onnxruntime as ort

    if crop not in CROPS:
        raise OnnxModelError(f"--crop must be one of: {', '.join(CROPS)}")
    if pool not in POOLS:
        raise OnnxModelError(f"--pool must be one of: {', '.join(POOLS)}")
    if not (isinstance(scale, (int, float)) and scale > 0):
        raise OnnxModelError("--scale must be a positive number")

    def session(p: Path) -> Any:
        try:
            return ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise OnnxModelError(f"ONNX Runtime cannot load {Path(path).name}: {exc}") from None

    sess = session(path)
    available = [o.name for o in sess.get_outputs()]
    wanted = list(outputs) if outputs else available
    if len(set(wanted)) != len(wanted):
        raise OnnxModelError("--outputs names an output twice")
    stored = Path(path)
    extra_names = [n for n in wanted if n not in available]
    if extra_names:
        stored = workdir / "cut.onnx"
        _add_outputs(Path(path), extra_names, stored)
        sess = session(stored)

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
    d1, d3 = _dim(shape[1]), _dim(shape[3])
    if d1 in (1, 3) and d3 not in (1, 3):
        layout = "NCHW"
    elif d3 in (1, 3) and d1 not in (1, 3):
        layout = "NHWC"
    elif d1 is None and d3 is None:
        layout = "NCHW"
    else:
        layout = "NCHW" if d1 in (1, 3) else "NHWC"
    c_dim = shape[1] if layout == "NCHW" else shape[3]
    hw = (shape[2], shape[3]) if layout == "NCHW" else (shape[1], shape[2])
    model_c = _dim(c_dim)
    if model_c is not None and channels is not None and channels != model_c:
        raise OnnxModelError(f"the model takes {model_c} channel(s), --channels is {channels}")
    channels = model_c or channels or 3
    if channels not in (1, 3):
        raise OnnxModelError(f"the model takes {channels} channels; radfeat feeds 1 (grey) or 3 (RGB)")
    h, w = _dim(hw[0]), _dim(hw[1])
    if h is not None and w is not None:
        if h != w:
            raise OnnxModelError(f"the model takes {h}×{w} images; radfeat feeds square images")
        if input_size is not None and input_size != h:
            raise OnnxModelError(f"the model takes {h}×{h} images, --input-size is {input_size}")
        input_size = h
    if input_size is None:
        raise OnnxModelError("--input-size is needed (the model accepts several image sizes)")
    if not 8 <= input_size <= 4096:
        raise OnnxModelError("--input-size must be between 8 and 4096")
    batch = _dim(shape[0])

    probe = np.zeros((batch or 1, channels, input_size, input_size), dtype=np.float32)
    if layout == "NHWC":
        probe = probe.transpose(0, 2, 3, 1).copy()
    try:
        results = sess.run(wanted, {inp.name: probe})
    except Exception as exc:
        raise OnnxModelError(f"the model does not run on a {input_size}×{input_size} image: {exc}") from None
    sizes: dict[str, int] = {}
    for name, arr in zip(wanted, results, strict=True):
        arr = np.asarray(arr)
        if arr.dtype.kind not in "fiub" or arr.ndim < 1 or arr.shape[0] != probe.shape[0]:
            raise OnnxModelError(f"output '{name}' is not a numeric tensor with one row per image "
                                 f"({arr.dtype}, shape {arr.shape})")
        sizes[name] = int(_pool(arr, pool, layout).reshape(arr.shape[0], -1).shape[1])
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


def _pool(arr: np.ndarray, pool: str, layout: str) -> np.ndarray:
    """Global pooling over the spatial axes of a (N, C, *spatial) — or (N, *spatial, C) — output."""
    if pool == "none" or arr.ndim < 3:
        return arr
    axes = tuple(range(2, arr.ndim)) if layout == "NCHW" else tuple(range(1, arr.ndim - 1))
    return arr.mean(axis=axes) if pool == "avg" else arr.max(axis=axes)


def load_image(path: Path, channels: int, size: int, crop: str, dicom_voi_lut: bool = False) -> np.ndarray:
    """An image as the registered model sees it before normalisation: ``H × W × C`` float32 pixels 0..255."""
    if channels == 3:
        arr = read_rgb(path, dicom_voi_lut=dicom_voi_lut)
    else:
        arr = to_uint8(*read_gray(path, dicom_voi_lut=dicom_voi_lut))
    if crop == "center":  # TorchXRayVision's centre square crop, on grey or colour pixels
        arr = center_square(arr)
    img = Image.fromarray(np.ascontiguousarray(arr), "RGB" if channels == 3 else "L")
    img = img.resize((size, size), Image.BILINEAR)
    out = np.asarray(img, dtype=np.float32)
    return out[:, :, None] if out.ndim == 2 else out


class OnnxExtractor(Extractor):
    kind = "onnx"

    def prepare(self) -> None:
        from radfeat.weights.export import weights_sha256

        ws = self.ws
        ensure_weights(ws, self.log)
        self.cfg = ws.extra
        self.sha = weights_sha256(ws)
        self.session = OnnxSession(ws.path, self.opts.device, self.threads, log=self.log)
        self.provider = self.session.provider
        self.mean = np.asarray(self.cfg["mean"], dtype=np.float32)
        self.std = np.asarray(self.cfg["std"], dtype=np.float32)
        self.scale = np.float32(self.cfg["scale"])
        self.fixed_batch = self.cfg.get("batch")

    def columns(self) -> list[str]:
        cols: list[str] = []
        for name in self.cfg["outputs"]:
            cols += block_names(self.opts.prefix, self.cfg["families"][name], self.cfg["sizes"][name])
        return cols

    def fingerprint(self) -> dict[str, Any]:
        return {"type": self.kind, "weights": self.ws.name, "weights_sha256": self.sha, "prefix": self.opts.prefix,
                "outputs": list(self.cfg["outputs"])}

    def start_line(self) -> str:
        return (f"ONNX model {self.ws.name} on {self.provider}, {self.ws.input_size}×{self.ws.input_size} "
                f"{'RGB' if self.cfg['channels'] == 3 else 'grey'}, outputs {', '.join(self.cfg['outputs'])}, "
                f"batch {self.batch_size}")

    def load(self, ref: ImageRef) -> np.ndarray:
        pixels = load_image(ref.path, self.cfg["channels"], self.ws.input_size, self.cfg["crop"],
                            self.opts.dicom_voi_lut)
        x = (pixels / self.scale - self.mean) / self.std
        return x if self.cfg["layout"] == "NHWC" else x.transpose(2, 0, 1)

    def _infer(self, x: np.ndarray) -> list[np.ndarray]:
        def run(batch: np.ndarray) -> list[np.ndarray]:
            return self.session.run(np.ascontiguousarray(batch, dtype=np.float32), self.cfg["outputs"])

        fixed = self.fixed_batch
        if not fixed:
            return run(x)
        parts: list[list[np.ndarray]] = []
        for start in range(0, len(x), fixed):
            chunk = x[start:start + fixed]
            real = len(chunk)
            if real < fixed:  # a model with a fixed batch size: pad with blank images, drop their rows
                chunk = np.concatenate([chunk, np.zeros((fixed - real, *chunk.shape[1:]), chunk.dtype)])
            parts.append([o[:real] for o in run(chunk)])
        return [np.concatenate([p[i] for p in parts]) for i in range(len(self.cfg["outputs"]))]

    def run(self, items: Sequence[np.ndarray], refs: Sequence[ImageRef]) -> BatchResult:
        outs = self._infer(np.stack(items))
        blocks = [_pool(np.asarray(o, dtype=np.float32), self.cfg["pool"], self.cfg["layout"]).reshape(len(items), -1)
                  for o in outs]
        return BatchResult(list(refs), blocks=blocks)

    def provenance(self) -> dict[str, Any]:
        ws = self.ws
        return {"weights": {"name": ws.name, "sha256": self.sha, "source": ws.source, "architecture": "onnx",
                            "input_size": ws.input_size},
                "onnx_model": {k: v for k, v in self.cfg.items() if k != "families"}}


ONNX = registry.register(registry.ExtractionType(
    name=OnnxExtractor.kind,
    label="Your ONNX model",
    description="Runs an image model you registered with “radfeat models add-onnx”; the columns are the "
                "outputs chosen when it was registered.",
    extractor=OnnxExtractor,
    columns="<prefix>_<output>_0…n for each output chosen at registration",
    order=30,
    weights_kinds=(OnnxExtractor.kind,),
    architectures=(OnnxExtractor.kind,),
    weights_word="an ONNX model",
    missing_weights="Choose the ONNX model to run (register one with 'radfeat models add-onnx')",
))
