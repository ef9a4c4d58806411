"""What the browser and window tests share: where Chromium is, how it starts, where screenshots go."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("RADFEAT_CHROMIUM", "/usr/bin/chromium")
# as root, in a closed network: no sandbox, no GPU, no background connections to Google's hosts
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parent / "artifacts"

needs_chromium = pytest.mark.skipif(not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)),
                                    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")


def artifact(name: str) -> Path:
    """Path for a screenshot kept by the tests (tests/artifacts/ is git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
