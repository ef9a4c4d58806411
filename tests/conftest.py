"""Shared fixtures: a radfeat home with a small random TorchXRayVision DenseNet, synthetic patient folders.

No weights are downloaded: checkpoints are random-initialised TorchXRayVision
DenseNets saved in TorchXRayVision's own format (a pickled module).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TINY = "tiny-test"


@pytest.fixture(scope="session")
def radfeat_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("radfeat-home")
    old = os.environ.get("RADFEAT_HOME")
    os.environ["RADFEAT_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("RADFEAT_HOME", None)
    else:
        os.environ["RADFEAT_HOME"] = old


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random DenseNet (growth 8, blocks 2-2-2-2) pickled the way TorchXRayVision stores weights."""
    from radfeat.synthetic import random_checkpoint

    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", seed=1, small=True)


@pytest.fixture(scope="session")
def tiny_weights(radfeat_home: Path, tiny_checkpoint: Path) -> str:
    """Name of the registered tiny checkpoint (RADFEAT_HOME points to a session temp folder)."""
    from radfeat.store import add_weights

    add_weights(TINY, tiny_checkpoint, log=lambda m: None)
    return TINY


@pytest.fixture
def make_patients() -> Callable[..., list[Path]]:
    """Factory: ``make_patients(root, depth=1, n_patients=3, per_folder=2, size=(96, 80))`` → image paths."""
    from radfeat.synthetic import make_dataset

    def _make(root: Path, depth: int = 1, n_patients: int = 3, per_folder: int = 2,
              size: tuple[int, int] = (96, 80), dates_csv: Path | None = None, seed: int = 0) -> list[Path]:
        return make_dataset(Path(root), n_patients=n_patients, per_folder=per_folder, depth=depth, size=size,
                            dates_csv=dates_csv, seed=seed)

    return _make
