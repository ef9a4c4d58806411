"""Where radfeat keeps downloaded weights and ONNX exports: one home folder.

``$RADFEAT_HOME`` overrides the per-user data folder (platformdirs).  Nothing
else in radfeat decides on these paths.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from radfeat.output.atomic import ensure_folder, trust_root


def home() -> Path:
    """The radfeat home folder (created on demand)."""
    env = os.environ.get("RADFEAT_HOME")
    path = Path(env).expanduser() if env else platformdirs.user_data_path("radfeat", appauthor=False)
    path.mkdir(parents=True, exist_ok=True)
    return trust_root(path)  # every write below it refuses symbolic links


def weights_dir() -> Path:
    return ensure_folder(home() / "weights")


def onnx_dir() -> Path:
    return ensure_folder(home() / "onnx")


def scratch_dir() -> Path:
    """Private working space for radfeat's own temporary files (never $TMPDIR)."""
    return ensure_folder(home() / "tmp")


def user_catalog_path() -> Path:
    return home() / "user_weights.json"
