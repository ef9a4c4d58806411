"""PyInstaller run-time hook for the GPU bundle built with RADFEAT_GPU_BUNDLE_CUDA=1.

ONNX Runtime's CUDA provider dlopen()s libcudart / libcublas / libcudnn by soname.  Outside a bundle
they come from the system or from the nvidia-*-cu12 wheels; inside it they sit in
``_internal/nvidia/*/lib``, which the dynamic loader does not search.  Loading them once, globally,
before the first session makes the provider's later dlopen() find the copies already in memory.
Nothing here runs in the CPU bundle.
"""

import contextlib
import ctypes
import os
import sys


def _preload() -> None:
    base = os.path.join(getattr(sys, "_MEIPASS", ""), "nvidia")
    if not os.path.isdir(base):
        return
    # dependency order: runtime first, cuDNN's sub-libraries before libcudnn itself
    order = ("libcudart", "libnvrtc", "libcublasLt", "libcublas", "libcufft", "libcurand", "libcudnn_")
    found = []
    for root, _dirs, files in os.walk(base):
        for name in files:
            if ".so" in name:
                found.append(os.path.join(root, name))

    def rank(path: str) -> int:
        name = os.path.basename(path)
        return next((i for i, p in enumerate(order) if name.startswith(p)), len(order))

    for path in sorted(found, key=rank):
        with contextlib.suppress(OSError):  # a library this GPU cannot use is reported by ONNX Runtime itself
            ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)


_preload()
