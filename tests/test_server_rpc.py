"""JSON-RPC 2.0 over real HTTP on loopback: protocol, every method, every error path, path checks."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image
from radfeat.options import ExtractOptions, validate
from radfeat.server.serve import BackgroundServer


class Http:
    """Raw HTTP helper: every call really goes through the socket."""

    def __init__(self, srv: BackgroundServer):
        self.srv = srv
        self.url = srv.url + "/rpc"
        self.headers = {"X-Radfeat-Token": srv.token, "Content-Type": "application/json"}

    def post(self, payload: Any, *, raw: bytes | None = None) -> requests.Response:
        body = raw if raw is not None else json.dumps(payload).encode()
        return requests.post(self.url, data=body, headers=self.headers, timeout=30)

    def call(self, method: str, params: Any = None, *, req_id: Any = 1) -> dict[str, Any]:
        payload: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": req_id}
        if params is not None:
            payload["params"] = params
        resp = self.post(payload)
        assert resp.status_code == 200, resp.text
        answer = resp.json()
        assert answer["jsonrpc"] == "2.0" and answer["id"] == req_id
        return answer

    def result(self, method: str, **params: Any) -> Any:
        answer = self.call(method, params)
        assert "error" not in answer, answer
        return answer["result"]

    def error(self, method: str, params: Any = None) -> dict[str, Any]:
        answer = self.call(method, params)
        assert "result" not in answer, answer
        err = answer["error"]
        assert isinstance(err["message"], str) and err["message"]
        assert "Traceback" not in json.dumps(err)
        return err


@pytest.fixture
def server(tiny_weights: str, workspace: Path) -> Iterator[BackgroundServer]:
    with BackgroundServer(workspace) as srv:
        yield srv


@pytest.fixture
def http(server: BackgroundServer) -> Http:
    return Http(server)


@pytest.fixture
def patients(tmp_path: Path, make_patients) -> Path:
    root = tmp_path / "patients"
    make_patients(root, n_patients=3, per_folder=2, dates_csv=tmp_path / "dates.csv")
    return root


# ---------------------------------------------------------------------------- protocol
def test_parse_error(http: Http) -> None:
    resp = http.post(None, raw=b'{"jsonrpc": "2.0", "method": ')
    assert resp.status_code == 200
    answer = resp.json()
    assert answer["id"] is None and answer["error"]["code"] == -32700
    assert "not valid JSON" in answer["error"]["message"]


@pytest.mark.parametrize(
    ("payload", "expect_id"),
    [
        ({"jsonrpc": "1.0", "method": "version", "id": 3}, 3),
        ({"method": "version", "id": 4}, 4),
        ({"jsonrpc": "2.0", "method": 5, "id": 5}, 5),
        ({"jsonrpc": "2.0", "method": "version", "params": "x", "id": 6}, 6),
        ({"jsonrpc": "2.0", "method": "version", "id": {"a": 1}}, None),
        ({"jsonrpc": "2.0", "method": "version", "id": 7, "extra": 1}, 7),
        ("version", None),
        (42, None),
    ],
)
def test_invalid_request(http: Http, payload: Any, expect_id: Any) -> None:
    answer = http.post(payload).json()
    assert answer["error"]["code"] == -32600
    assert answer["error"]["message"].startswith("Invalid Request")
    assert answer["id"] == expect_id


def test_empty_batch_is_one_invalid_request(http: Http) -> None:
    answer = http.post([]).json()
    assert isinstance(answer, dict) and answer["error"]["code"] == -32600


def test_unknown_method(http: Http) -> None:
    err = http.error("list_folder", {"root": "."})
    assert err["code"] == -32601
    assert "list_folder" in err["message"] and "list_folders" in err["message"]  # did-you-mean hint


@pytest.mark.parametrize(
    ("method", "params", "needle"),
    [
        ("list_folders", {}, "Missing parameter 'root'"),
        ("list_folders", {"root": ".", "depth": "1"}, "'depth' of list_folders must be an integer"),
        ("list_folders", {"root": ".", "depth": True}, "must be an integer"),
        ("list_folders", {"root": ".", "depth": 0}, "between 1"),
        ("list_folders", {"root": 3}, "'root' of list_folders must be a string"),
        ("list_folders", {"root": ".", "colour": "red"}, "Unknown parameter 'colour'"),
        ("list_folders", [".", 1, 2], "at most 2 parameters"),
        ("validate_options", {"options": []}, "must be an object"),
        ("job_status", {}, "Missing parameter 'job_id'"),
        ("read_table", {"path": "x.csv", "limit": 0}, "'limit'"),
        ("read_table", {"path": "x.csv", "offset": -1}, "'offset'"),
        ("thumbnail", {"path": "x.jpg", "size": 5000}, "'size'"),
        ("inspect_dates", {"path": "x.csv", "sample": -1}, "'sample'"),
        ("version", {"verbose": True}, "Unknown parameter 'verbose'"),
    ],
)
def test_bad_params(http: Http, method: str, params: Any, needle: str) -> None:
    err = http.error(method, params)
    assert err["code"] == -32602
    assert needle in err["message"]


def test_params_by_position(http: Http, patients: Path) -> None:
    answer = http.call("list_folders", [str(patients), 1])
    assert answer["result"]["folders"] == ["p1", "p2", "p3"]


def test_notifications_get_no_answer(http: Http) -> None:
    resp = http.post({"jsonrpc": "2.0", "method": "version"})
    assert resp.status_code == 204 and resp.content == b""
    resp = http.post([{"jsonrpc": "2.0", "method": "version"}, {"jsonrpc": "2.0", "method": "nope"}])
    assert resp.status_code == 204 and resp.content == b""


def test_batch(http: Http, patients: Path) -> None:
    batch = [
        {"jsonrpc": "2.0", "method": "version", "id": "a"},
        {"jsonrpc": "2.0", "method": "list_folders", "params": {"root": str(patients)}, "id": "b"},
        {"jsonrpc": "2.0", "method": "no_such_method", "id": "c"},
        {"jsonrpc": "2.0", "method": "list_folders", "params": {"depth": 1}, "id": "d"},
        {"jsonrpc": "2.0", "method": "version"},  # notification: no answer
        {"jsonrpc": "1.0", "method": "version", "id": "f"},
        17,
    ]
    answers = http.post(batch).json()
    assert isinstance(answers, list) and len(answers) == 6
    by_id = {a["id"]: a for a in answers if a["id"] is not None}
    assert by_id["a"]["result"]["radfeat"]
    assert by_id["b"]["result"]["count"] == 3
    assert by_id["c"]["error"]["code"] == -32601
    assert by_id["d"]["error"]["code"] == -32602
    assert by_id["f"]["error"]["code"] == -32600
    assert [a["error"]["code"] for a in answers if a["id"] is None] == [-32600]


def test_internal_error_hides_details(http: Http, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import radfeat.server.api

    def broken(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("secret internals at /home/someone")

    monkeypatch.setattr(radfeat.server.api, "read_page", broken)
    (workspace / "t.csv").write_text("a\n1\n")
    err = http.error("read_table", {"path": "t.csv"})
    assert err["code"] == -32603
    assert "RuntimeError" in err["message"] and "server log" in err["message"]
    assert "secret" not in json.dumps(err)


def test_get_rpc_is_not_served(server: BackgroundServer) -> None:
    resp = requests.get(server.url + "/rpc", headers={"X-Radfeat-Token": server.token}, timeout=10)
    assert resp.status_code in (404, 405)


def test_oversized_body(http: Http) -> None:
    resp = http.post(None, raw=b"[" + b" " * (5 * 1024 * 1024) + b"]")
    assert resp.status_code == 413


# ---------------------------------------------------------------------------- methods
def test_version(http: Http) -> None:
    res = http.result("version")
    assert res["radfeat"] and res["onnxruntime"]
    assert "CPUExecutionProvider" in res["providers"]


def test_list_folders(http: Http, tmp_path: Path, make_patients) -> None:
    root = tmp_path / "deep"
    make_patients(root, depth=2, n_patients=2, per_folder=1)
    res = http.result("list_folders", root=str(root), depth=2)
    assert res == {"root": str(root.resolve()), "depth": 2, "count": 4, "images": 4, "truncated": False,
                   "folders": ["p1/adm1", "p1/adm2", "p2/adm1", "p2/adm2"]}
    assert http.result("list_folders", root=str(root))["folders"] == ["p1", "p2"]
    err = http.error("list_folders", {"root": str(tmp_path / "missing")})
    assert err["code"] == -32002 and "Folder not found" in err["message"]


def test_list_weights(http: Http, tiny_weights: str) -> None:
    res = http.result("list_weights")
    # the catalog default is not downloaded here: the first usable set is proposed instead
    assert res["catalog_default"] == "densenet121-res224-chex" and res["default"] == tiny_weights
    names = [w["name"] for w in res["weights"]]
    assert tiny_weights in names and "densenet121-res224-chex" in names
    tiny = next(w for w in res["weights"] if w["name"] == tiny_weights)
    assert set(tiny) >= {"name", "description", "labels", "trained_labels", "downloaded", "exported", "size",
                         "source"}
    assert len(tiny["labels"]) == 18 and tiny["downloaded"] is True and tiny["source"] == "user"
    chex = next(w for w in res["weights"] if w["name"] == "densenet121-res224-chex")
    assert "" in chex["labels"] and len(chex["trained_labels"]) < 18  # untrained heads are visible
    assert (tiny["type"], chex["type"]) == ("densenet", "densenet")
    types = {w["name"]: w["type"] for w in res["weights"]}
    assert types["resnet50-res512-all"] == "encoder" and types["101-elastic"] == "encoder"


def test_validate_options_valid(http: Http, patients: Path, workspace: Path, tiny_weights: str) -> None:
    res = http.result("validate_options", options={"input": str(patients), "weights": tiny_weights})
    assert res == {"valid": True, "problems": [],
                   "output_path": str(workspace / "DATA" / "extracted_features" / "image_extracted_features.csv"),
                   "ready": True, "readiness": [], "default_weights": tiny_weights,
                   "depth_survey": res["depth_survey"]}
    assert res["depth_survey"]["suggested_depth"] == 1 and res["depth_survey"]["total_images"] == 6
    res = http.result("validate_options", options={"input": str(patients), "weights": tiny_weights,
                                                   "filename": "mine.parquet", "format": "parquet"})
    assert res["valid"] and res["output_path"].endswith("/DATA/extracted_features/mine.parquet")


def test_validate_options_same_words_as_cli(http: Http, tmp_path: Path, workspace: Path) -> None:
    raw = {"input": str(tmp_path / "nowhere"), "depth": 0, "prefix": "im g", "filename": "out.txt",
           "features": [], "weights": "densenet121-res224-chexx", "batch_size": 0}
    res = http.result("validate_options", options=raw)
    assert res["valid"] is False and res["output_path"] is None
    cli = validate(ExtractOptions.from_dict({**raw, "workspace": str(workspace)}))
    assert res["problems"] == [{"field": p.field, "message": p.message} for p in cli]
    fields = {p["field"] for p in res["problems"]}
    assert fields == {"input", "depth", "prefix", "filename", "features", "weights", "batch_size"}
    assert any("Did you mean 'densenet121-res224-chex'" in p["message"] for p in res["problems"])


def test_validate_options_unknown_key_and_types(http: Http, patients: Path) -> None:
    res = http.result("validate_options", options={"input": str(patients), "colour": "red"})
    assert res["problems"] == [{"field": "colour", "message": "Unknown option 'colour'"}]
    res = http.result("validate_options", options={"input": str(patients), "master_table": "yes"})
    assert res["problems"][0]["field"] == "master_table"
    res = http.result("validate_options", options={"input": str(patients), "select": "p1"})
    assert any(p["field"] == "select" for p in res["problems"])


def test_validate_master_table(http: Http, patients: Path, tmp_path: Path, tiny_weights: str) -> None:
    dates = tmp_path / "dates.csv"
    good = {"dates_csv": str(dates), "filename_column": "image", "date_column": "taken_at", "patient_level": 1}
    res = http.result("validate_options", options={"input": str(patients), "weights": tiny_weights,
                                                   "master_table": good})
    assert res["valid"], res
    bad = {**good, "date_column": "when", "patient_level": 3}
    res = http.result("validate_options", options={"input": str(patients), "weights": tiny_weights,
                                                   "master_table": bad})
    fields = {p["field"] for p in res["problems"]}
    assert fields == {"master_table.date_column", "master_table.patient_level"}


def test_start_extraction_invalid_options(http: Http, tmp_path: Path) -> None:
    err = http.error("start_extraction", {"options": {"input": str(tmp_path / "nowhere"), "prefix": ""}})
    assert err["code"] == -32000
    assert err["message"].startswith("Invalid options: Input folder not found")
    assert {p["field"] for p in err["data"]["problems"]} == {"input", "prefix"}
    err = http.error("start_extraction", {"options": {"inptu": "x"}})
    assert err["code"] == -32000 and err["data"]["problems"][0]["field"] == "inptu"
    assert http.result("list_jobs") == {"jobs": []}


def test_inspect_dates(http: Http, tmp_path: Path, patients: Path) -> None:
    res = http.result("inspect_dates", path=str(tmp_path / "dates.csv"), sample=2)
    assert res["columns"] == ["image", "taken_at"] and res["rows"] == 6 and len(res["sample"]) == 2
    assert res["sample"][0]["image"] == "cxr_00001.jpg"
    err = http.error("inspect_dates", {"path": str(tmp_path / "missing.csv")})
    assert err["code"] == -32002
    (tmp_path / "empty.csv").write_bytes(b"")
    err = http.error("inspect_dates", {"path": str(tmp_path / "empty.csv")})
    assert err["code"] == -32004 and "empty.csv" in err["message"]


def _write_table(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "t.csv"
    lines = ["level_1,filename,img_predictions_0"] + [f"p{i},cxr_{i}.jpg,{i / 10}" for i in range(7)]
    lines[3] = "p2,cxr_2.jpg,"  # an empty cell must come back as null, never NaN
    lines[4] = "p3,cxr_3.jpg,nan"  # how the engine writes a NaN feature (fractal: image smaller than a box)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_read_table_and_list_files(http: Http, workspace: Path) -> None:
    assert http.result("list_files") == {"workspace": str(workspace), "files": [],
                                         "folder": str(workspace / "DATA" / "extracted_features")}
    out = workspace / "DATA" / "extracted_features"
    table = _write_table(out)
    (out / "t.errors.csv").write_text("path,reason\n")
    (out / ".t.csv.123.tmp").write_text("junk")
    page = http.result("read_table", path=str(table), offset=1, limit=3)
    assert page["columns"] == ["level_1", "filename", "img_predictions_0"]
    assert page["total"] == 7 and len(page["rows"]) == 3
    assert page["rows"][0] == ["p1", "cxr_1.jpg", 0.1]
    assert page["rows"][1][2] is None and page["rows"][2][2] is None
    # relative paths are taken from the workspace
    assert http.result("read_table", path="DATA/extracted_features/t.csv")["total"] == 7
    files = http.result("list_files")["files"]
    assert [f["name"] for f in files] == ["t.csv"]
    assert files[0]["path"] == str(table) and files[0]["size"] == table.stat().st_size
    assert files[0]["errors_path"] == str(out / "t.errors.csv") and files[0]["modified"].endswith("Z")
    assert files[0]["weights"] is None  # no provenance file yet
    (out / "t.json").write_text(json.dumps({"weights": {"name": "densenet121-res224-nih"},
                                            "options": {"input": "/data/cxr", "depth": 2}}))
    files = http.result("list_files")["files"]
    assert (files[0]["weights"], files[0]["input"], files[0]["depth"]) == ("densenet121-res224-nih", "/data/cxr", 2)
    err = http.error("read_table", {"path": str(out / "missing.csv")})
    assert err["code"] == -32002
    (workspace / "notes.txt").write_text("hello")
    err = http.error("read_table", {"path": "notes.txt"})
    assert err["code"] == -32004


def test_read_table_parquet(http: Http, workspace: Path) -> None:
    import pandas as pd

    out = workspace / "DATA" / "extracted_features"
    out.mkdir(parents=True)
    pd.DataFrame({"filename": ["a.jpg", "b.jpg"], "img_predictions_0": [0.5, float("nan")]}).to_parquet(
        out / "t.parquet")
    page = http.result("read_table", path=str(out / "t.parquet"))
    assert page["total"] == 2 and page["rows"] == [["a.jpg", 0.5], ["b.jpg", None]]


def test_thumbnail(http: Http, patients: Path) -> None:
    http.result("list_folders", root=str(patients))
    image = patients / "p1" / "cxr_00001.jpg"
    res = http.result("thumbnail", path=str(image), size=40)
    assert res["data_url"].startswith("data:image/png;base64,")
    thumb = Image.open(io.BytesIO(base64.b64decode(res["data_url"].split(",", 1)[1])))
    assert max(thumb.size) <= 40 and (res["original_width"], res["original_height"]) == (80, 96)
    (patients / "p1" / "broken.jpg").write_bytes(b"not a jpeg")
    err = http.error("thumbnail", {"path": str(patients / "p1" / "broken.jpg")})
    assert err["code"] == -32004 and "broken.jpg" in err["message"]
    err = http.error("thumbnail", {"path": str(patients / "p1" / "missing.jpg")})
    assert err["code"] == -32002


def test_thumbnail_16bit(http: Http, workspace: Path) -> None:
    import numpy as np

    arr = (np.arange(64 * 48, dtype=np.uint16).reshape(64, 48) * 20).astype(np.uint16)
    Image.fromarray(arr).save(workspace / "deep.png")
    res = http.result("thumbnail", path="deep.png", size=32)
    thumb = Image.open(io.BytesIO(base64.b64decode(res["data_url"].split(",", 1)[1])))
    # scaled to 8 bits by the full 16-bit range, as the extraction reads it (not stretched min-max)
    expected = Image.fromarray(np.rint(arr.astype(np.float32) * np.float32(255 / 65535)).astype(np.uint8))
    expected.thumbnail((32, 32))
    assert thumb.mode == "L" and np.array_equal(np.asarray(thumb), np.asarray(expected))
    assert thumb.getextrema()[1] < 250  # the brightest pixel is 61420 / 65535 of full scale


def test_unknown_job(http: Http) -> None:
    assert http.error("job_status", {"job_id": "nope"})["code"] == -32002
    err = http.error("cancel_job", {"job_id": "nope"})
    assert err["code"] == -32002 and err["message"] == "No such job: nope"


# ---------------------------------------------------------------------------- path checks
def test_read_outside_workspace_is_denied(http: Http, workspace: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    for path in (str(secret), "../secret.csv", "DATA/../../secret.csv", "/etc/passwd"):
        err = http.error("read_table", {"path": path})
        assert err["code"] == -32001, path
        assert "Access denied" in err["message"]
    os.symlink(secret, workspace / "link.csv")  # a link inside the workspace does not open the outside
    assert http.error("read_table", {"path": "link.csv"})["code"] == -32001


def test_thumbnail_needs_a_chosen_folder(http: Http, patients: Path, tmp_path: Path) -> None:
    image = patients / "p2" / "cxr_00003.jpg"
    assert http.error("thumbnail", {"path": str(image)})["code"] == -32001
    http.result("list_folders", root=str(patients / "p2"))
    assert http.result("thumbnail", path=str(image))["data_url"]
    assert http.error("thumbnail", {"path": str(patients / "p1" / "cxr_00001.jpg")})["code"] == -32001
    assert http.error("thumbnail", {"path": str(patients / "p2" / ".." / "p1" / "cxr_00001.jpg")})["code"] == -32001


def test_inspected_dates_file_becomes_readable_but_not_its_folder(http: Http, tmp_path: Path, patients: Path) -> None:
    dates = tmp_path / "dates.csv"
    assert http.error("read_table", {"path": str(dates)})["code"] == -32001
    http.result("inspect_dates", path=str(dates))
    assert http.result("read_table", path=str(dates))["total"] == 6
    (tmp_path / "other.csv").write_text("a\n1\n")
    assert http.error("read_table", {"path": str(tmp_path / "other.csv")})["code"] == -32001


@pytest.mark.parametrize(
    ("extra", "field", "needle"),
    [
        ({"filename": "../../evil.csv"}, "filename", "File name must be"),
        ({"filename": "sub/evil.csv"}, "filename", "File name must be"),
        ({"output": "/tmp/evil.csv"}, "output", "Output must be written to"),
        ({"output": "DATA/extracted_features/../evil.csv"}, "output", "Output must be written to"),
        ({"output": "DATA/extracted_features/bad name.csv"}, "filename", "File name must be"),
        ({"workspace": "/tmp"}, "workspace", "workspace is fixed"),
        ({"select": ["p1", "../other"]}, "select", "'../other' is not below the input folder"),
        ({"select": ["/etc"]}, "select", "'/etc' is not below"),
    ],
)
def test_options_that_escape_are_refused(http: Http, patients: Path, tiny_weights: str, extra: dict, field: str,
                                         needle: str) -> None:
    options = {"input": str(patients), "weights": tiny_weights, **extra}
    res = http.result("validate_options", options=options)
    assert not res["valid"]
    assert [p["field"] for p in res["problems"]] == [field]
    assert needle in res["problems"][0]["message"]
    err = http.error("start_extraction", {"options": options})
    assert err["code"] == -32000 and err["data"]["problems"] == res["problems"]
    assert http.result("list_jobs") == {"jobs": []}


def test_output_inside_the_workspace_is_accepted(http: Http, patients: Path, workspace: Path,
                                                 tiny_weights: str) -> None:
    res = http.result("validate_options", options={"input": str(patients), "weights": tiny_weights,
                                                   "output": "DATA/extracted_features/run2.csv",
                                                   "workspace": str(workspace)})
    assert res["valid"], res
    assert res["output_path"] == str(workspace / "DATA" / "extracted_features" / "run2.csv")


def test_python_client(server: BackgroundServer, patients: Path) -> None:
    from radfeat.server.rpc import RpcClient, RpcError

    client = RpcClient(server.url, server.token)
    assert client.call("list_folders", root=str(patients))["count"] == 3
    with pytest.raises(RpcError) as info:
        client.call("list_folders", root=str(patients / "nope"))
    assert info.value.code == -32002
    answers = client.batch([("version", {}), ("nope", {})])
    assert "result" in answers[0] and answers[1]["error"]["code"] == -32601
    with pytest.raises(RpcError, match="HTTP 403"):
        RpcClient(server.url, "wrong").call("version")
