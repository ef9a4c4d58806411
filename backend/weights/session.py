"""ONNX Runtime sessions: which execution provider, how many threads, one class per model kind."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from radfeat.errors import RadfeatError
from radfeat.privacy import disable_ort_telemetry

disable_ort_telemetry()  # the environment switch is set by radfeat/__init__; this covers earlier imports


class DeviceError(RadfeatError, RuntimeError):
    """The requested device cannot be used."""


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


NO_CUDA = ("CUDA was requested but this ONNX Runtime has no CUDAExecutionProvider "
           "(install onnxruntime-gpu and a matching CUDA, or use --device cpu)")


def device_problem(device: str) -> str | None:
    """Why ``device`` cannot be used here (checked with the other options, before any work), or None."""
    if device == "cuda" and "CUDAExecutionProvider" not in available_providers():
        return NO_CUDA
    return None


def choose_providers(device: str) -> list[str | tuple[str, dict]]:
    """The one place that maps ``--device auto|cpu|cuda`` to ONNX Runtime providers."""
    cuda_ok = "CUDAExecutionProvider" in available_providers()
    if device == "cpu" or (device == "auto" and not cuda_ok):
        return ["CPUExecutionProvider"]
    if device == "cuda" and not cuda_ok:
        raise DeviceError(NO_CUDA)
    # use_tf32=0: TF32 tensor-core maths would round fp32 convolutions to 10-bit mantissas (not exact)
    cuda_opts = {"cudnn_conv_algo_search": "HEURISTIC", "arena_extend_strategy": "kSameAsRequested", "use_tf32": "0"}
    return [("CUDAExecutionProvider", cuda_opts), "CPUExecutionProvider"]


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


EXPORT_OUTPUTS = ("predictions", "features")  # what an exported TorchXRayVision model gives by default


class OnnxSession:
    """One ONNX Runtime session on the chosen provider, for every extraction type's model.

    ``run(batch, outputs)`` feeds the model's one input and returns the named outputs in order.
    """

    def __init__(self, onnx_path: Path | bytes, device: str = "auto", threads: int | None = None,
                 log: Callable[[str], None] = print) -> None:
        """``onnx_path``: the model file, or its bytes (a Ray worker receives the model that way)."""
        self.model_path = None if isinstance(onnx_path, bytes) else Path(onnx_path)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        # no busy-waiting between kernels: the decode threads need those cycles on small machines
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = choose_providers(device)
        self._session = ort.InferenceSession(onnx_path if isinstance(onnx_path, bytes) else str(onnx_path), opts,
                                             providers=providers)
        active = self._session.get_providers()
        self.provider = active[0]
        if device == "cuda" and self.provider != "CUDAExecutionProvider":
            raise DeviceError("CUDA was requested but ONNX Runtime could not start it (check the CUDA/cuDNN install)")
        if device == "auto" and providers[0] != "CPUExecutionProvider" and self.provider == "CPUExecutionProvider":
            log("CUDA provider could not start; running on the CPU")
        self.input_name = self._session.get_inputs()[0].name

    def run(self, batch: np.ndarray, outputs: Sequence[str] = EXPORT_OUTPUTS) -> list[np.ndarray]:
        return self._session.run(list(outputs), {self.input_name: batch})
