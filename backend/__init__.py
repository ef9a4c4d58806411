"""radfeat: deep features and pathology predictions from folders of chest X-rays.

The public Python API is :func:`radfeat.extract`; the CLI (``radfeat``), the local
backend and the desktop app all go through it.
"""

from __future__ import annotations

from typing import Any

from radfeat.privacy import quiet_environment

quiet_environment()  # before anything imports ONNX Runtime: no telemetry, nothing under $HOME or $TMPDIR

__version__ = "0.1.0"

__all__ = ["__version__", "extract"]


def extract(*args: Any, **kwargs: Any) -> Any:
    """Run an extraction; see :func:`radfeat.pipeline.run.extract` for the arguments."""
    from radfeat.pipeline.run import extract as _extract

    return _extract(*args, **kwargs)
