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


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty radfeat home of this test's own (``RADFEAT_HOME``), not the session's shared one."""
    path = tmp_path / "home"
    monkeypatch.setenv("RADFEAT_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random DenseNet (growth 8, blocks 2-2-2-2) pickled the way TorchXRayVision stores weights."""
    from radfeat.synthetic import random_checkpoint

    return random_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", seed=1, small=True)


@pytest.fixture(scope="session")
def tiny_weights(radfeat_home: Path, tiny_checkpoint: Path) -> str:
    """Name of the registered tiny checkpoint (RADFEAT_HOME points to a session temp folder)."""
    from radfeat.weights.registration import add_weights

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


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An empty MEDomics-style workspace folder."""
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (no browser download), one for the whole session."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    from helpers import CHROMIUM, CHROMIUM_ARGS

    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def ui_server(workspace: Path, tiny_weights: str):
    """The real backend (page + JSON-RPC) on a free loopback port, serving ``workspace``."""
    from radfeat.server.serve import BackgroundServer

    srv = BackgroundServer(workspace).start()
    yield srv
    srv.stop()


@pytest.fixture
def viewport() -> dict[str, int]:
    return {"width": 1280, "height": 800}


@pytest.fixture
def page(browser, ui_server, viewport):
    """The page loaded and connected; fails the test on any JavaScript error."""
    from playwright.sync_api import expect

    ctx = browser.new_context(viewport=viewport)
    pg = ctx.new_page()
    pg.set_default_timeout(20_000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(ui_server.launch_url)
    expect(pg.locator("#conn")).to_have_attribute("data-state", "up")
    expect(pg.locator("#weights")).to_be_enabled()
    yield pg
    ctx.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
