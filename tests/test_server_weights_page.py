"""Weights from the page over real HTTP: readiness says they are missing, probe, download job, import.

The catalog ($RADFEAT_CATALOG) points its URLs at 127.0.0.1: either a closed port (offline) or a
small HTTP server started here; the home folder ($RADFEAT_HOME) is the test's own.  Nothing leaves
the machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from helpers import Client, FileServer, closed_port_url
from radfeat.server.app import BackgroundServer

PAYLOAD = os.urandom(3_000_000)
LABELS = [f"p{i}" for i in range(18)]


@pytest.fixture
def file_server():
    with FileServer(PAYLOAD) as files:
        yield files


def use_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, sha: str | None = None) -> None:
    """Two DenseNet entries: ``w1`` (the default, downloadable from ``url``) and ``w2`` (no URL)."""
    cat = {"default": "w1", "pathologies": LABELS, "weights": [
        {"name": "w1", "file": "w1.pt", "url": f"{url}/w1.pt", "sha256": sha, "labels": LABELS},
        {"name": "w2", "file": "w2.pt", "labels": LABELS}]}
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(cat))
    monkeypatch.setenv("RADFEAT_CATALOG", str(path))


@pytest.fixture
def served(workspace: Path):
    with BackgroundServer(workspace) as srv:
        yield srv, Client(srv)


@pytest.fixture
def patients(tmp_path: Path, make_patients) -> Path:
    root = tmp_path / "patients"
    make_patients(root, n_patients=2, per_folder=1, size=(64, 64))
    return root


def test_offline_weights_are_not_ready_and_the_probe_says_unreachable(tmp_path, monkeypatch, home, served,
                                                                      patients):
    url = closed_port_url()
    use_catalog(tmp_path, monkeypatch, url)
    _srv, rpc = served

    check = rpc("validate_options", options={"input": str(patients)})
    assert check["valid"] is True and check["ready"] is False
    [entry] = check["readiness"]
    assert entry["code"] == "weights_missing" and entry["field"] == "weights" and entry["name"] == "w1"
    assert entry["actions"] == ["download", "import"] and "not on this machine" in entry["message"]
    assert check["default_weights"] is None  # nothing usable here yet

    probe = rpc("probe_weights", name="w1")
    assert probe["name"] == "w1" and probe["reachable"] is False and probe["size"] is None
    assert "Cannot reach 127.0.0.1" in probe["message"] and "import" in probe["message"]
    no_url = rpc("validate_options", options={"input": str(patients), "weights": "w2"})["readiness"][0]
    assert no_url["actions"] == ["import"]

    refused = rpc.raw("start_extraction", options={"input": str(patients)})["error"]
    assert refused["code"] == -32000 and refused["message"].startswith("Not ready: The weights 'w1'")
    assert [r["code"] for r in refused["data"]["readiness"]] == ["weights_missing"]
    assert refused["data"]["problems"] == []
    assert rpc("list_jobs")["jobs"] == []


def test_probe_and_download_job_with_progress(tmp_path, monkeypatch, home, served, file_server):
    use_catalog(tmp_path, monkeypatch, file_server.url, hashlib.sha256(PAYLOAD).hexdigest())
    _srv, rpc = served
    weights = {w["name"]: w for w in rpc("list_weights")["weights"]}
    assert weights["w1"]["available"] is False and weights["w1"]["origin"] == "catalog"

    probe = rpc("probe_weights", name="w1")
    assert probe == {"name": "w1", "reachable": True, "size": len(PAYLOAD), "message": probe["message"]}
    file_server.head_ok = False  # a server that refuses HEAD: the 1-byte GET gives the size
    assert rpc("probe_weights", name="w1")["size"] == len(PAYLOAD)

    job = rpc("download_weights", name="w1")
    seen: list[dict] = []
    final = rpc.wait(job["job_id"], seen=seen)
    assert final["kind"] == "download" and final["state"] == "done", final
    assert final["done"] == final["total"] == len(PAYLOAD)
    assert all(st["kind"] == "download" for st in seen)
    assert [st["done"] for st in seen] == sorted(st["done"] for st in seen)
    assert (home / "weights" / "w1.pt").read_bytes() == PAYLOAD
    assert final["summary"]["size"] == len(PAYLOAD)
    weights = {w["name"]: w for w in rpc("list_weights")["weights"]}
    assert weights["w1"]["available"] is True and weights["w1"]["downloaded"] is True
    again = rpc.raw("download_weights", name="w1")["error"]
    assert again["code"] == -32602 and "already on this machine" in again["message"]
    unknown = rpc.raw("probe_weights", name="nope")["error"]
    assert unknown["code"] == -32002 and "Unknown weights 'nope'" in unknown["message"]


def test_download_that_fails_checksum_is_a_failed_job(tmp_path, monkeypatch, home, served, file_server):
    use_catalog(tmp_path, monkeypatch, file_server.url, "0" * 64)
    _srv, rpc = served
    final = rpc.wait(rpc("download_weights", name="w1")["job_id"])
    assert final["state"] == "failed" and "checksum mismatch for w1" in final["error"]
    assert final["interrupted"] is False and final["resumable"] is False
    assert not (home / "weights" / "w1.pt").exists()


def test_import_folder_and_single_checkpoint(tmp_path, monkeypatch, home, served, patients, tiny_checkpoint):
    use_catalog(tmp_path, monkeypatch, closed_port_url())
    _srv, rpc = served
    usb = tmp_path / "usb" / "models_data"
    usb.mkdir(parents=True)
    shutil.copyfile(tiny_checkpoint, usb / "w2.pt")  # a catalog file name: verified as TorchXRayVision w2
    (usb / "w1.pt").write_bytes(b"\x80\x02 not a checkpoint")

    result = rpc("import_weights", paths=[str(tmp_path / "usb")])
    assert [(i["name"], i["status"]) for i in result["imported"]] == [("w2", "imported")]
    assert [Path(s["path"]).name for s in result["skipped"]] == ["w1.pt"] and result["skipped"][0]["reason"]
    weights = {w["name"]: w for w in rpc("list_weights")["weights"]}
    assert weights["w2"]["available"] is True and weights["w2"]["origin"] == "catalog"
    assert weights["w1"]["available"] is False
    # the default is missing but w2 is here: proposed as the default
    assert rpc("list_weights")["default"] == "w2"
    check = rpc("validate_options", options={"input": str(patients)})
    assert check["default_weights"] == "w2" and check["readiness"][0]["code"] == "weights_missing"
    assert rpc("validate_options", options={"input": str(patients), "weights": "w2"})["ready"] is True

    own = tmp_path / "My model (v2).pt"  # a user's own checkpoint: registered under its file name
    shutil.copyfile(tiny_checkpoint, own)
    result = rpc("import_weights", paths=[str(own), str(tmp_path / "missing.pt"), str(patients / "p1")])
    assert [(i["name"], i["status"]) for i in result["imported"]] == [("My-model-v2", "registered")]
    assert {s["path"]: s["reason"] for s in result["skipped"]}[str(tmp_path / "missing.pt")] == "not found"
    weights = {w["name"]: w for w in rpc("list_weights")["weights"]}
    assert weights["My-model-v2"]["origin"] == "user" and weights["My-model-v2"]["available"] is True
    bad = rpc.raw("import_weights", paths=[])["error"]
    assert bad["code"] == -32602


def test_cancelled_download_keeps_its_part_and_resumes(tmp_path, monkeypatch, home, served, file_server):
    use_catalog(tmp_path, monkeypatch, file_server.url, hashlib.sha256(PAYLOAD).hexdigest())
    _srv, rpc = served
    file_server.pace = threading.Event()  # never set: 64 kB every 50 ms, a download that takes a while
    job = rpc("download_weights", name="w1")["job_id"]
    rpc.wait(job, until=lambda st: st["stage"] == "downloading" and st["done"] > 0)
    assert rpc("cancel_job", job_id=job)["cancelled"] is True
    final = rpc.wait(job)
    assert final["state"] == "cancelled" and final["kind"] == "download"
    part = home / "weights" / "w1.pt.part"
    kept = part.stat().st_size
    assert 0 < kept < len(PAYLOAD) and not (home / "weights" / "w1.pt").exists()

    file_server.pace.set()  # full speed: the next try continues where the last one stopped
    again = rpc.wait(rpc("download_weights", name="w1")["job_id"])
    assert again["state"] == "done" and (home / "weights" / "w1.pt").read_bytes() == PAYLOAD
    assert file_server.ranges[-1] == f"bytes={kept}-" and not part.exists()
    assert any(f"Resuming download of w1 at {kept} bytes" in line for line in again["log"])
