"""Opt-in int8 mode (``--precision int8``): a statically quantised copy of an export.

Faster on CPUs with int8 dot-product instructions (AVX512-VNNI, AVX-VNNI, AMX),
but approximate: the benchmark prints its deviation from the exact fp32 model.
Calibration uses deterministic synthetic radiographs passed through the exact
``xrv`` preprocessing, so the quantised model is reproducible.  fp32 stays the default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from radfeat.output.atomic import atomic_path, file_lock
from radfeat.pipeline.images import read_gray
from radfeat.pipeline.preprocess import make
from radfeat.synthetic import chest_like
from radfeat.weights.session import OnnxSession

CALIBRATION_IMAGES = 24


def _calibration_batches(size: int) -> list[np.ndarray]:
    pre = make("xrv", size)
    out = []
    for seed in range(CALIBRATION_IMAGES):
        h, w = (512 + 37 * (seed % 5), 448 + 29 * (seed % 3))
        out.append(pre(chest_like(h, w, seed=1000 + seed), 255.0)[None, None])
    return out


def quantized(fp32_path: Path, log: Callable[[str], None] = print) -> Path:
    """Path of the int8 version of ``fp32_path``, building and caching it on first use."""
    dest = fp32_path.with_name(fp32_path.stem + ".int8.onnx")
    with file_lock(str(dest) + ".lock"):
        if dest.is_file():
            return dest
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        log("Building the int8 model (first use of --precision int8)...")
        import onnxruntime as ort

        size = ort.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"]).get_inputs()[0].shape[-1]
        batches = _calibration_batches(int(size))

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._it = iter(batches)

            def get_next(self):  # noqa: ANN202 - ORT API
                x = next(self._it, None)
                return None if x is None else {"image": x}

        import contextlib
        import logging

        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser logs one warning per BatchNorm weight
        from radfeat.privacy import private_tempdir

        with contextlib.ExitStack() as stack:
            stack.callback(root.setLevel, level)
            stack.enter_context(private_tempdir())  # the quantiser's scratch files stay in $RADFEAT_HOME
            pre_tmp = stack.enter_context(atomic_path(dest.with_suffix(".pre.onnx")))
            quant_pre_process(str(fp32_path), str(pre_tmp), skip_symbolic_shape=True)
            tmp = stack.enter_context(atomic_path(dest))
            quantize_static(str(pre_tmp), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=_output_nodes(str(pre_tmp)))
        dest.with_suffix(".pre.onnx").unlink(missing_ok=True)
        return dest


def _output_nodes(path: str) -> list[str]:
    """Keep the classifier and calibration arithmetic in fp32 (tiny cost, probabilities stay smooth)."""
    import onnx

    model = onnx.load(path, load_external_data=False)
    return [n.name for n in model.graph.node if n.op_type in ("Gemm", "MatMul", "Sigmoid", "Div", "Sub", "Where")]


def compare(fp32_path: Path, int8_path: Path, images: Sequence[Path]) -> dict[str, float]:
    """Deviation of the int8 model from fp32 on real files (xrv preprocessing)."""
    size = 224
    pre = make("xrv", size)
    x = np.stack([pre(*read_gray(p)) for p in images])[:, None]
    p32, f32 = OnnxSession(fp32_path, "cpu", log=lambda m: None).run(x)
    p8, f8 = OnnxSession(int8_path, "cpu", log=lambda m: None).run(x)
    return {
        "max_pred_diff": float(np.abs(p32 - p8).max()),
        "max_feat_rel_diff": float(np.abs(f32 - f8).max() / np.abs(f32).max()),
        "feat_corr": float(np.corrcoef(f32.ravel(), f8.ravel())[0, 1]),
    }
