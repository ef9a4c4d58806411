"""``radfeat models fetch`` against a local HTTP server: progress, resume of a partial file, checksum."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from helpers import FileServer, closed_port_url

PAYLOAD = os.urandom(300_000)


@pytest.fixture
def server():
    with FileServer(PAYLOAD) as files:
        yield files


def _catalog(tmp_path, url: str, sha: str | None):
    cat = {"default": "w1", "pathologies": [f"p{i}" for i in range(18)], "weights": [
        {"name": "w1", "file": "w1.pt", "url": f"{url}/w1.pt", "sha256": sha, "labels": [f"p{i}" for i in range(18)]}]}
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(cat))
    return path


def _fetch(tmp_path, catalog, home):
    env = os.environ | {"RADFEAT_CATALOG": str(catalog), "RADFEAT_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "radfeat", "models", "fetch", "w1"], capture_output=True,
                          text=True, env=env, timeout=120)


def test_resumed_verified_download(tmp_path, server):
    home = tmp_path / "home"
    (home / "weights").mkdir(parents=True)
    (home / "weights" / "w1.pt.part").write_bytes(PAYLOAD[:120_000])  # an earlier, interrupted download
    catalog = _catalog(tmp_path, server.url, hashlib.sha256(PAYLOAD).hexdigest())
    proc = _fetch(tmp_path, catalog, home)
    assert proc.returncode == 0, proc.stderr
    assert server.ranges == ["bytes=120000-"]
    assert "Resuming download of w1 at 120000 bytes" in proc.stdout
    assert (home / "weights" / "w1.pt").read_bytes() == PAYLOAD
    assert not (home / "weights" / "w1.pt.part").exists()


def test_checksum_mismatch_is_refused(tmp_path, server):
    home = tmp_path / "home"
    proc = _fetch(tmp_path, _catalog(tmp_path, server.url, "0" * 64), home)
    assert proc.returncode == 1
    assert "checksum mismatch for w1" in proc.stderr and "Traceback" not in proc.stderr
    assert not (home / "weights" / "w1.pt").exists() and not (home / "weights" / "w1.pt.part").exists()


def test_unknown_checksum_is_reported(tmp_path, server):
    home = tmp_path / "home"
    proc = _fetch(tmp_path, _catalog(tmp_path, server.url, None), home)
    assert proc.returncode == 0
    assert f"sha256 {hashlib.sha256(PAYLOAD).hexdigest()}" in proc.stdout


def test_unreachable_server_says_so(tmp_path):
    """A closed port on loopback: the message names the host and the offline way, no traceback."""
    url = closed_port_url()
    port = url.rsplit(":", 1)[1]
    proc = _fetch(tmp_path, _catalog(tmp_path, url, None), tmp_path / "home")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"cannot reach 127.0.0.1:{port} to download w1" in proc.stderr and "models import" in proc.stderr
