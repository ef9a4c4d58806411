"""Where radfeat keeps downloaded weights and ONNX exports: one home folder.

``$RADFEAT_HOME`` overrides the per-user data folder (platformdirs).  Nothing
else in radfeat decides on these paths.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def home() -> Path:
    """The radfeat home folder (created on demand)."""
    env = os.environ.get("RADFEAT_HOME")
    path = Path(env).expanduser() if env else platformdirs.user_data_path("radfeat", appauthor=False)
    path.mkdir(parents=True, exist_ok=True)
    return path


def weights_dir() -> Path:
    path = home() / "weights"
    path.mkdir(parents=True, exist_ok=True)
    return path


def onnx_dir() -> Path:
    path = home() / "onnx"
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_catalog_path() -> Path:
    return home() / "user_weights.json"
