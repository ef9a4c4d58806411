"""``onnx``: bring your own ONNX image model (registered with ``radfeat models add-onnx``).

Registration (:mod:`radfeat.extractors.onnx_inspect`, called by :func:`radfeat.weights.registration.add_onnx`)
reads the model's one image input and its outputs and stores the settings in the user catalog.

Extraction reads each image as 8-bit grey (1 channel; first channel, 16-bit scaled) or RGB
(3 channels; grey replicated), optionally crops the centre square, resizes it to ``input_size``
(Pillow bilinear with antialiasing, as ``torchvision.transforms.Resize`` does on PIL images), then
``x = (pixel / scale - mean) / std`` per channel.  Each chosen output, optionally global-pooled over
its spatial axes (``pool`` ``avg`` or ``max``), is flattened in C order into columns
``<prefix>_<output>_<i>`` (the output name with characters other than letters, digits and ``_``
replaced by ``_``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from radfeat.extractors.base import BatchResult, Extractor
from radfeat.extractors.declarations.onnx_model import ONNX
from radfeat.extractors.onnx_inspect import OnnxModelError, pool_output  # noqa: F401  (OnnxModelError: re-exported)
from radfeat.output.columns import block_names
from radfeat.pipeline.discovery import ImageRef
from radfeat.pipeline.images import DEFAULT_MAX_PIXELS, center_square, read_gray, read_rgb, to_uint8
from radfeat.weights.export import weights_sha256
from radfeat.weights.readiness import ensure_weights
from radfeat.weights.session import OnnxSession


def load_image(path: Path, channels: int, size: int, crop: str, dicom_voi_lut: bool = False,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """An image as the registered model sees it before normalisation: ``H × W × C`` float32 pixels 0..255."""
    if channels == 3:
        arr = read_rgb(path, max_pixels, dicom_voi_lut=dicom_voi_lut)
    else:
        arr = to_uint8(*read_gray(path, max_pixels, dicom_voi_lut=dicom_voi_lut))
    if crop == "center":  # TorchXRayVision's centre square crop, on grey or colour pixels
        arr = center_square(arr)
    img = Image.fromarray(np.ascontiguousarray(arr), "RGB" if channels == 3 else "L")
    img = img.resize((size, size), Image.BILINEAR)
    out = np.asarray(img, dtype=np.float32)
    return out[:, :, None] if out.ndim == 2 else out


class OnnxExtractor(Extractor):
    kind = ONNX.name

    def prepare(self) -> None:
        wset = self.wset
        ensure_weights(wset, self.log)
        self.cfg = wset.extra
        self.sha = weights_sha256(wset)
        self.session = OnnxSession(wset.path, self.opts.device, self.threads, log=self.log)
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
        return {"type": self.kind, "weights": self.wset.name, "weights_sha256": self.sha, "prefix": self.opts.prefix,
                "outputs": list(self.cfg["outputs"])}

    def start_line(self) -> str:
        return (f"ONNX model {self.wset.name} on {self.provider}, {self.wset.input_size}×{self.wset.input_size} "
                f"{'RGB' if self.cfg['channels'] == 3 else 'grey'}, outputs {', '.join(self.cfg['outputs'])}, "
                f"batch {self.batch_size}")

    def load(self, ref: ImageRef) -> np.ndarray:
        pixels = load_image(ref.path, self.cfg["channels"], self.wset.input_size, self.cfg["crop"],
                            self.opts.dicom_voi_lut, self.opts.max_pixels)
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
        blocks = [pool_output(np.asarray(o, dtype=np.float32), self.cfg["pool"], self.cfg["layout"]).reshape(len(items), -1)
                  for o in outs]
        return BatchResult(list(refs), blocks=blocks)

    def provenance(self) -> dict[str, Any]:
        wset = self.wset
        return {"weights": {"name": wset.name, "sha256": self.sha, "source": wset.source, "architecture": "onnx",
                            "input_size": wset.input_size},
                "onnx_model": {k: v for k, v in self.cfg.items() if k != "families"}}
