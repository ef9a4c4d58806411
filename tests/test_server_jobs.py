"""Extraction jobs driven over real HTTP: live progress, errors kept, busy weights, cancel and resume.

The engine is the real one (radfeat.pipeline.run.extract with the tiny DenseNet).  Where a test
needs to see a job *while* it runs, the server is given a thin wrapper around that same
function which slows or pauses its progress callback, so that what the test observes does
not depend on how fast this machine is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Client, Gate, serving, slowed
from radfeat.pipeline.run import extract as real_extract
from radfeat.server.serve import BackgroundServer


@pytest.fixture
def patients(tmp_path: Path, make_patients) -> Path:
    root = tmp_path / "patients"
    make_patients(root, n_patients=3, per_folder=2)
    return root


@pytest.fixture
def options(patients: Path, tiny_weights: str) -> dict[str, Any]:
    return {"input": str(patients), "weights": tiny_weights, "batch_size": 1, "threads": 2}


@pytest.fixture
def plain(tiny_weights: str, workspace: Path) -> Iterator[tuple[BackgroundServer, Client]]:
    with serving(workspace) as pair:
        yield pair


def test_whole_job_with_progress_going_up(tiny_weights: str, workspace: Path, options: dict) -> None:
    with serving(workspace, slowed(0.08)) as (srv, rpc):
        started = rpc("start_extraction", options=options)
        out = workspace / "DATA" / "extracted_features" / "image_extracted_features.csv"
        assert started == {"job_id": started["job_id"], "output": str(out), "weights": options["weights"]}
        seen: list[dict] = []
        final = rpc.wait(started["job_id"], seen=seen)

        assert final["state"] == "done" and final["stage"] == "done"
        assert final["done"] == final["total"] == 6 and final["failed"] == 0 and final["eta_s"] == 0
        assert final["output"] == str(out) and out.is_file()
        assert final["images_per_s"] > 0 and final["errors"] == [] and final["error"] is None
        summary = final["summary"]
        assert summary["ok"] == 6 and summary["cancelled"] is False and summary["output"] == str(out)
        assert any("Wrote" in line for line in final["log"]) and final["log_count"] >= len(final["log"])
        assert final["options"]["input"] == options["input"] and final["options"]["workspace"] == str(workspace)

        done = [st["done"] for st in seen]
        assert done == sorted(done), "progress never goes back"
        assert any(0 < d < 6 for d in done), "intermediate progress is visible"
        running = [st for st in seen if st["state"] == "running" and st["stage"] == "extracting" and st["done"]]
        assert running and all(st["total"] == 6 for st in running)
        assert any(st["eta_s"] is not None and st["eta_s"] > 0 for st in running)
        assert {st["state"] for st in seen} <= {"queued", "running", "done"}

        page = rpc("read_table", path=final["output"], limit=10)
        assert page["total"] == 6 and page["columns"][:2] == ["level_1", "filename"]
        assert [f["path"] for f in rpc("list_files")["files"]] == [str(out)]
        assert [j["job_id"] for j in rpc("list_jobs")["jobs"]] == [started["job_id"]]
        # a finished job cannot be cancelled and keeps its summary
        assert rpc("cancel_job", job_id=started["job_id"]) == {"job_id": started["job_id"], "cancelled": False}
        assert rpc("job_status", job_id=started["job_id"])["summary"] == summary


def test_bad_images_are_listed_and_the_job_goes_on(plain: tuple, options: dict, patients: Path) -> None:
    _srv, rpc = plain
    (patients / "p2" / "zz_truncated.jpg").write_bytes(b"\xff\xd8\xff\xe0broken")
    (patients / "p3" / "zz_empty.jpg").write_bytes(b"")
    job = rpc("start_extraction", options={**options, "batch_size": 4})
    final = rpc.wait(job["job_id"])
    assert final["state"] == "done"
    assert final["failed"] == 2 and final["summary"]["ok"] == 6
    assert sorted(Path(e["path"]).name for e in final["errors"]) == ["zz_empty.jpg", "zz_truncated.jpg"]
    assert all(e["reason"] for e in final["errors"])
    assert final["summary"]["errors"] == final["errors"]


def test_failed_job_keeps_its_error(tiny_weights: str, workspace: Path, tmp_path: Path, make_patients) -> None:
    root = tmp_path / "vanishing"
    make_patients(root, n_patients=1, per_folder=1, size=(32, 32))

    def images_gone(opts: Any, **kw: Any) -> Any:  # ready when started, empty when the engine looks
        for image in root.rglob("*.jpg"):
            image.unlink()
        return real_extract(opts, **kw)

    with serving(workspace, images_gone) as (_srv, rpc):
        job = rpc("start_extraction", options={"input": str(root), "weights": tiny_weights})
        final = rpc.wait(job["job_id"])
        assert final["state"] == "failed" and final["summary"] is None
        assert "No images found 1 folder level below" in final["error"]
        assert final["problems"] == [{"field": "input", "message": final["error"]}]
        assert any(line.startswith("Failed:") for line in final["log"])
        assert "Traceback" not in json.dumps(final)
        # an empty folder is refused before any job starts
        refused = rpc.raw("start_extraction", options={"input": str(root), "weights": tiny_weights})["error"]
        assert refused["code"] == -32000 and refused["data"]["readiness"][0]["code"] == "no_images"


def test_crash_in_the_engine_is_a_failed_job(tiny_weights: str, workspace: Path, options: dict) -> None:
    def crash(opts: Any, **_kw: Any) -> Any:
        raise RuntimeError("disk full")

    with serving(workspace, crash) as (_srv, rpc):
        job = rpc("start_extraction", options=options)
        final = rpc.wait(job["job_id"])
        assert final["state"] == "failed" and final["error"] == "disk full"
        assert "Traceback" not in json.dumps(final)
        # the weights are free again
        assert rpc("start_extraction", options=options)["job_id"] != job["job_id"]


def test_one_job_at_a_time_per_weight_set(tiny_weights: str, workspace: Path, options: dict) -> None:
    gate = Gate()
    with serving(workspace, gate) as (_srv, rpc):
        first = rpc("start_extraction", options=options)
        assert gate.paused.wait(30)
        busy = rpc.raw("start_extraction", options={**options, "filename": "other.csv"})["error"]
        assert busy["code"] == -32003 and busy["data"] == {"job_id": first["job_id"]}
        assert tiny_weights in busy["message"]
        gate.release()
        assert rpc.wait(first["job_id"])["state"] == "done"
        second = rpc("start_extraction", options={**options, "filename": "other.csv"})
        assert rpc.wait(second["job_id"])["state"] == "done"


def test_cancel_mid_run_then_resume(tiny_weights: str, workspace: Path, options: dict) -> None:
    gate = Gate()
    with serving(workspace, gate) as (_srv, rpc):
        job = rpc("start_extraction", options=options)["job_id"]
        assert gate.paused.wait(30)  # the engine has finished one batch (1 image) and is held there
        st = rpc("job_status", job_id=job)
        assert st["state"] == "running" and st["done"] == 1 and st["total"] == 6

        assert rpc("cancel_job", job_id=job) == {"job_id": job, "cancelled": True}
        assert rpc("job_status", job_id=job)["cancel_requested"] is True
        gate.release()
        final = rpc.wait(job)
        assert final["state"] == "cancelled"
        summary = final["summary"]
        assert summary["cancelled"] is True and summary["ok"] == 1 and final["done"] < final["total"]
        assert any("resume" in line for line in final["log"])
        out = Path(final["output"])
        assert not out.exists(), "a cancelled run publishes no table"
        assert list(out.parent.glob(out.name + ".partial*")), "the finished rows stay on disk"

        again = rpc("start_extraction", options=options)["job_id"]
        done = rpc.wait(again)
        assert done["state"] == "done"
        assert done["summary"]["resumed"] == 1 and done["summary"]["ok"] == 6
        page = rpc("read_table", path=done["output"], limit=100)
        assert page["total"] == 6
        assert sorted(row[1] for row in page["rows"]) == [f"cxr_{k:05d}.jpg" for k in range(1, 7)]


def test_stopping_the_server_cancels_running_jobs(tiny_weights: str, workspace: Path, options: dict) -> None:
    srv = BackgroundServer(workspace, extract_fn=slowed(0.2)).start()
    rpc = Client(srv)
    job = rpc("start_extraction", options=options)["job_id"]
    rpc.wait(job, until=lambda st: st["done"] > 0)
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 10
    status = srv.state.jobs.get(job).snapshot()
    assert status["state"] == "cancelled" and status["summary"]["cancelled"] is True
