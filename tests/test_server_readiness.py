"""Readiness over real HTTP: depths, existing output, input checks, restarts, master summary, 403 page.

The engine is the real one with the tiny DenseNet; a run that must be seen mid-way is paused by
the same gate as in test_server_jobs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from helpers import Gate, serving

OUT = Path("DATA") / "extracted_features"


@pytest.fixture
def deep(tmp_path: Path, make_patients) -> Path:
    """Images two levels down (patient/admission), 3 patients × 2 admissions × 1 image."""
    root = tmp_path / "deep"
    make_patients(root, depth=2, n_patients=3, per_folder=1, size=(64, 64))
    return root


def test_depth_survey_and_wrong_depth_blocks_the_run(tiny_weights, workspace, deep):
    with serving(workspace) as (_srv, rpc):
        survey = rpc("survey_depths", root=str(deep))
        assert survey["root"] == str(deep) and survey["suggested_depth"] == 2 and survey["total_images"] == 6
        assert {d["depth"]: (d["folders"], d["images"]) for d in survey["depths"]} == {
            0: (1, 0), 1: (3, 0), 2: (6, 6)}
        assert survey["truncated"] is False
        assert rpc("list_folders", root=str(deep), depth=1)["images"] == 0
        assert rpc("list_folders", root=str(deep), depth=2)["images"] == 6

        opts = {"input": str(deep), "weights": tiny_weights, "depth": 1}
        check = rpc("validate_options", options=opts)
        assert check["valid"] is True and check["ready"] is False
        [entry] = check["readiness"]
        assert entry["code"] == "no_images" and entry["field"] == "depth" and entry["suggested_depth"] == 2
        assert "No images found 1 folder level below" in entry["message"] and "choose depth 2" in entry["message"]
        refused = rpc.raw("start_extraction", options=opts)["error"]
        assert refused["code"] == -32000 and refused["data"]["readiness"][0]["code"] == "no_images"
        assert rpc("validate_options", options={**opts, "depth": 2})["ready"] is True

        not_found = rpc.raw("survey_depths", root=str(deep / "nope"))["error"]
        assert not_found["code"] == -32002 and "Folder not found" in not_found["message"]
        bad = rpc.raw("survey_depths", root=str(deep), max_depth=0)["error"]
        assert bad["code"] == -32602


def test_input_that_is_a_file_and_binary_dates_csv(tiny_weights, workspace, deep, tmp_path):
    image = next(deep.rglob("*.jpg"))
    with serving(workspace) as (_srv, rpc):
        check = rpc("validate_options", options={"input": str(image), "weights": tiny_weights})
        [problem] = [p for p in check["problems"] if p["field"] == "input"]
        assert "is a file, not a folder" in problem["message"]
        err = rpc.raw("list_folders", root=str(image))["error"]
        assert err["code"] == -32002 and "is a file, not a folder" in err["message"]
        err = rpc.raw("survey_depths", root=str(image))["error"]
        assert "is a file, not a folder" in err["message"]

        binary = tmp_path / "dates.csv"
        binary.write_bytes(image.read_bytes())  # a JPEG named .csv
        err = rpc.raw("inspect_dates", path=str(binary))["error"]
        assert err["code"] == -32004 and "is not a text CSV file" in err["message"]
        xlsx = tmp_path / "dates.xlsx"
        xlsx.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
        assert "Excel workbook" in rpc.raw("inspect_dates", path=str(xlsx))["error"]["message"]
        opts = {"input": str(deep), "depth": 2, "weights": tiny_weights,
                "master_table": {"dates_csv": str(binary), "filename_column": "a", "date_column": "b"}}
        fields = {p["field"]: p["message"] for p in rpc("validate_options", options=opts)["problems"]}
        assert "is not a text CSV file" in fields["master_table.dates_csv"]


def test_existing_output_needs_overwrite(tiny_weights, workspace, deep):
    opts = {"input": str(deep), "depth": 2, "weights": tiny_weights, "batch_size": 4}
    out = workspace / OUT / "image_extracted_features.csv"
    with serving(workspace) as (_srv, rpc):
        assert rpc.wait(rpc("start_extraction", options=opts)["job_id"])["state"] == "done"
        first = out.read_bytes()
        check = rpc("validate_options", options=opts)
        assert check["valid"] is True and check["ready"] is False
        [entry] = check["readiness"]
        assert entry["code"] == "output_exists" and entry["suggested_filename"] == "image_extracted_features_2.csv"
        refused = rpc.raw("start_extraction", options=opts)["error"]
        assert refused["code"] == -32000 and "already exists" in refused["message"]
        assert out.read_bytes() == first

        ok = rpc("validate_options", options={**opts, "overwrite": True})
        assert ok["ready"] is True and ok["readiness"][0]["blocking"] is False
        job = rpc("start_extraction", options={**opts, "overwrite": True})
        assert rpc.wait(job["job_id"])["state"] == "done"
        renamed = rpc("start_extraction", options={**opts, "filename": entry["suggested_filename"]})
        assert rpc.wait(renamed["job_id"])["state"] == "done"
        assert (workspace / OUT / "image_extracted_features_2.csv").is_file()


def test_cancelled_run_is_listed_for_resume(tiny_weights, workspace, deep):
    opts = {"input": str(deep), "depth": 2, "weights": tiny_weights, "batch_size": 1, "threads": 1}
    gate = Gate()
    with serving(workspace, gate) as (_srv, rpc):
        assert rpc("list_partial_runs") == {"runs": []}
        job = rpc("start_extraction", options=opts)
        assert gate.paused.wait(60)
        during = rpc("list_partial_runs")["runs"]
        assert [r["running"] for r in during] == [True]
        rpc("cancel_job", job_id=job["job_id"])
        gate.release()
        final = rpc.wait(job["job_id"])
        assert final["state"] == "cancelled" and final["interrupted"] is True and final["resumable"] is True

        [run] = rpc("list_partial_runs")["runs"]
        assert run["filename"] == "image_extracted_features.csv" and run["running"] is False
        assert run["output"] == str(workspace / OUT / "image_extracted_features.csv")
        assert 1 <= run["rows_done"] < 6 and run["resumable"] is True
        assert run["options"]["input"] == str(deep) and run["options"]["depth"] == 2
        assert run["options"]["weights"] == tiny_weights and run["modified"].endswith("Z")

    with serving(workspace) as (_srv, rpc):  # a new backend: another instance, same partial run
        version = rpc("version")
        assert version["workspace"] == str(workspace.resolve()) and len(version["instance"]) == 16
        [again] = rpc("list_partial_runs")["runs"]
        resumed = rpc("start_extraction", options={k: v for k, v in again["options"].items()
                                                  if k in opts or k == "workspace"})
        final = rpc.wait(resumed["job_id"])
        assert final["state"] == "done" and final["summary"]["resumed"] == again["rows_done"]
        assert final["interrupted"] is False and rpc("list_partial_runs") == {"runs": []}


def test_version_lists_only_usable_providers(tiny_weights, workspace):
    with serving(workspace) as (_srv, rpc):
        first = rpc("version")
        assert "CPUExecutionProvider" in first["providers"]
        assert set(first["providers"]) <= {"CPUExecutionProvider", "CUDAExecutionProvider"}
        assert rpc("version")["instance"] == first["instance"]
    with serving(workspace) as (_srv, rpc):
        assert rpc("version")["instance"] != first["instance"]


def test_master_summary_in_job_status(tiny_weights, workspace, tmp_path, make_patients):
    root = tmp_path / "mt"
    dates = tmp_path / "dates.csv"
    make_patients(root, n_patients=3, per_folder=2, size=(64, 64), dates_csv=dates)
    lines = dates.read_text().splitlines()
    dates.write_text("\n".join(lines[:-1] + ["ghost.jpg,2021-02-01 10:00:00", "cxr_00001.jpg,not a date"]) + "\n")
    mt = {"dates_csv": str(dates), "filename_column": "image", "date_column": "taken_at", "patient_level": 1}
    with serving(workspace) as (_srv, rpc):
        job = rpc("start_extraction", options={"input": str(root), "weights": tiny_weights, "master_table": mt})
        final = rpc.wait(job["job_id"])
        assert final["state"] == "done", final
        master = final["summary"]["master"]
        assert master["unmatched_images"] == ["p3/cxr_00006.jpg"] and master["unmatched_images_total"] == 1
        assert master["unmatched_dates"] == 1 and master["unparseable"] == 1 and master["duplicates"] == 1
        assert master["rows"] == final["summary"]["master_table"]["rows"] == 6
        assert master["unmatched_path"].endswith("image_extracted_features.unmatched.csv")


def test_browser_without_token_gets_a_page_rpc_keeps_json(tiny_weights, workspace):
    with serving(workspace) as (srv, _rpc):
        page = requests.get(srv.url + "/", headers={"Accept": "text/html,application/xhtml+xml"}, timeout=10)
        assert page.status_code == 403 and page.headers["Content-Type"].startswith("text/html")
        assert "radfeat gui" in page.text and "radfeat serve" in page.text and "<style>" in page.text
        assert "missing or wrong token" in page.text
        assert page.headers["Content-Security-Policy"] and page.headers["X-Frame-Options"] == "DENY"
        plain = requests.get(srv.url + "/", timeout=10)
        assert plain.status_code == 403 and plain.headers["Content-Type"].startswith("text/plain")
        rpc = requests.post(srv.url + "/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "version"},
                            headers={"Accept": "text/html"}, timeout=10)
        assert rpc.status_code == 403 and json.loads(rpc.text)["error"] == "forbidden"
