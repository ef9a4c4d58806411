"""The backend under attack, over real HTTP on loopback: paging memory, races, JSON, slow clients, the token.

Items 3, 4, 5, 7 and 15 of the security review (see README "What radfeat guarantees").
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from radfeat.server.app import BackgroundServer


def call(srv: BackgroundServer, method: str, **params):
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    resp = requests.post(srv.url + "/rpc", json=body, headers={"X-Radfeat-Token": srv.token}, timeout=60)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json"), resp.text
    return resp.json()


def raw(srv: BackgroundServer, body: str | bytes) -> requests.Response:
    return requests.post(srv.url + "/rpc", data=body, timeout=60,
                         headers={"X-Radfeat-Token": srv.token, "Content-Type": "application/json"})


@pytest.fixture
def server(workspace: Path, radfeat_home: Path):
    with BackgroundServer(workspace, request_timeout=2.0) as srv:
        yield srv


# ------------------------------------------------------------------------------- 3. paging memory
def _table(path: Path, rows: int, cols: int = 30) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("level_1,filename," + ",".join(f"img_f_{i}" for i in range(cols)) + "\n")
        block = rng.random((rows, cols), dtype=np.float32)
        for i in range(rows):
            fh.write(f"p{i},0{i}.jpg," + ",".join(f"{v:.6g}" for v in block[i]) + "\n")


def test_huge_offsets_cost_nothing_and_are_refused(server, workspace):
    out = workspace / "DATA" / "extracted_features"
    out.mkdir(parents=True)
    _table(out / "t.csv", 30_000)
    import pandas as pd

    pd.read_csv(out / "t.csv", dtype={"filename": str}).to_parquet(out / "t.parquet", row_group_size=7_000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name in ("t.csv", "t.parquet"):
        for offset in (2**62, 10**7, 30_001):
            answer = call(server, "read_table", path=f"DATA/extracted_features/{name}", offset=offset, limit=1000)
            assert answer["error"]["code"] == -32602 and "past the end" in answer["error"]["message"], answer
            assert answer["error"]["data"]["total"] == 30_000
        page = call(server, "read_table", path=f"DATA/extracted_features/{name}", offset=29_998, limit=1000)["result"]
        assert page["total"] == 30_000 and [r[:2] for r in page["rows"]] == [["p29998", "029998.jpg"],
                                                                             ["p29999", "029999.jpg"]]
        page = call(server, "read_table", path=f"DATA/extracted_features/{name}", offset=7_001, limit=3)["result"]
        assert [r[0] for r in page["rows"]] == ["p7001", "p7002", "p7003"]
        assert call(server, "read_table", path=f"DATA/extracted_features/{name}", offset=30_000,
                    limit=5)["result"]["rows"] == []
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 150, f"paging grew the server by {grown_mb:.0f} MB"


# ------------------------------------------------------------------------- 5. check-then-open races
def test_swapping_a_chosen_folder_for_a_link_never_serves_outside_files(server, tmp_path):
    inside, outside = tmp_path / "chosen", tmp_path / "secret"
    for folder, shade, header in ((inside, 40, "inside_col"), (outside, 220, "secret_col")):
        folder.mkdir()
        Image.fromarray(np.full((64, 48), shade, np.uint8)).save(folder / "x.png")
        (folder / "t.csv").write_text(f"{header}\n1\n")
    assert "result" in call(server, "list_folders", root=str(inside))
    stop = threading.Event()
    parked = tmp_path / "parked"

    def swap() -> None:
        while not stop.is_set():
            os.rename(inside, parked)
            os.symlink(outside, inside)
            time.sleep(0.0005)
            os.unlink(inside)
            os.rename(parked, inside)

    swapper = threading.Thread(target=swap)
    swapper.start()
    served = {"inside": 0, "outside": 0, "refused": 0}
    try:
        for _ in range(150):
            thumb = call(server, "thumbnail", path=str(inside / "x.png"), size=16)
            table = call(server, "read_table", path=str(inside / "t.csv"))
            for answer, secret in ((thumb, lambda r: r["original_width"] == 48 and _shade(r) > 128),
                                   (table, lambda r: r["columns"] == ["secret_col"])):
                if "error" in answer:
                    served["refused"] += 1
                else:
                    served["outside" if secret(answer["result"]) else "inside"] += 1
    finally:
        stop.set()
        swapper.join()
    assert served["outside"] == 0, served
    assert served["inside"] > 0


def _shade(result: dict) -> float:
    import base64
    import io

    data = base64.b64decode(result["data_url"].split(",", 1)[1])
    return float(np.asarray(Image.open(io.BytesIO(data)).convert("L")).mean())


def test_fifo_and_links_are_not_read(server, workspace, tmp_path):
    fifo = workspace / "pipe.csv"
    os.mkfifo(fifo)
    answer = call(server, "read_table", path="pipe.csv")
    assert answer["error"]["code"] == -32002
    (tmp_path / "secret.csv").write_text("secret_col\n1\n")
    (workspace / "link.csv").symlink_to(tmp_path / "secret.csv")
    assert call(server, "read_table", path="link.csv")["error"]["code"] == -32001


# --------------------------------------------------------------------------------- 7. hostile JSON
@pytest.mark.parametrize("body", ['{"jsonrpc": "2.0", "id": NaN, "method": "version"}',
                                  '{"jsonrpc": "2.0", "id": Infinity, "method": "version"}',
                                  '{"jsonrpc": "2.0", "id": -Infinity, "method": "version"}',
                                  '{"jsonrpc": "2.0", "id": 1e999, "method": "version"}',
                                  '{"jsonrpc": "2.0", "id": 1, "method": "read_table", "params": {"path": "x", '
                                  '"offset": 1e999}}',
                                  "[" * 5000 + "]" * 5000,
                                  '{"jsonrpc": "2.0", "id": 1, "method": "version", "params": ' + "[" * 5000
                                  + "]" * 5000 + "}",
                                  '{"a":' * 5000 + "1" + "}" * 5000])
def test_hostile_json_gets_a_json_rpc_error(server, body):
    resp = raw(server, body)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    answer = resp.json()
    assert answer["error"]["code"] in (-32700, -32600) and answer["id"] is None, answer
    assert call(server, "version")["result"]["radfeat"]  # still serving


def test_very_long_paths_are_invalid_params_not_internal_errors(server):
    long = "/" + "a" * 6000
    for method, params in (("read_table", {"path": long}), ("thumbnail", {"path": long}),
                           ("list_folders", {"root": long}), ("inspect_dates", {"path": "/x" + "b" * 300})):
        answer = call(server, method, **params)
        assert answer["error"]["code"] == -32602, (method, answer)
    answer = call(server, "validate_options", options={"input": long, "type": "fractal"})["result"]
    assert not answer["valid"] and any("too long" in p["message"] for p in answer["problems"])


@pytest.mark.parametrize("filename", ["CON.csv", "NUL.csv", "aux.csv", "x" * 300 + ".csv"])
def test_rpc_refuses_names_windows_cannot_create(server, tmp_path, filename):
    answer = call(server, "validate_options", options={"input": str(tmp_path), "type": "fractal",
                                                       "filename": filename})["result"]
    assert not answer["valid"] and any(p["field"] == "filename" for p in answer["problems"]), answer


def test_rpc_validation_names_a_planted_link(server, workspace, tmp_path, make_patients):
    make_patients(tmp_path / "in", n_patients=1, per_folder=1, size=(40, 40))
    out = workspace / "DATA" / "extracted_features"
    out.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (out / "t.errors.csv").symlink_to(victim)
    opts = {"input": str(tmp_path / "in"), "type": "fractal", "max_box": 3, "filename": "t.csv"}
    answer = call(server, "validate_options", options=opts)["result"]
    assert not answer["valid"] and "symbolic link" in answer["problems"][0]["message"]
    assert call(server, "start_extraction", options=opts)["error"]["code"] == -32000
    answer = call(server, "validate_options", options={**opts, "filename": None,
                                                       "output": "DATA/extracted_features/t.errors.csv"})
    assert not answer["result"]["valid"]
    assert victim.read_text() == "precious"


# ------------------------------------------------------------------------------ 7. slow clients
def test_slow_clients_are_disconnected(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(b"POST /rpc HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 500\r\n\r\n{" % server.port)
        start = time.monotonic()
        data = b""
        while chunk := sock.recv(4096):  # the server answers (or closes) once its 2 s timeout passes
            data += chunk
        assert time.monotonic() - start < 50
    assert call(server, "version")["result"]["radfeat"]


# --------------------------------------------------------------------- 4. no token on a command line
FAKE_BROWSER = """#!/bin/sh
printf '%s\\n' "$@" > "{argv}"
cat /proc/$$/cmdline | tr '\\0' '\\n' >> "{argv}"
"""


def test_serve_hands_the_browser_a_private_one_time_page(tmp_path, workspace, radfeat_home):
    argv_file = tmp_path / "argv.txt"
    browser = tmp_path / "fake-browser"
    browser.write_text(FAKE_BROWSER.format(argv=argv_file))
    browser.chmod(0o755)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BROWSER": f"{browser} %s"}
    proc = subprocess.Popen([sys.executable, "-m", "radfeat", "serve", "--workspace", str(workspace)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        token = url = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and token is None:
            match = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=([\w-]+)", proc.stdout.readline())
            if match:
                url, token = match.groups()
        assert token, "no URL printed"
        while not argv_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        argv = argv_file.read_text()
        assert token not in argv and "token" not in argv
        page = Path(argv.splitlines()[0].removeprefix("file://"))
        assert stat.S_IMODE(page.stat().st_mode) == 0o600 and stat.S_IMODE(page.parent.stat().st_mode) == 0o700
        launch = re.search(r'url=([^"]+)"', page.read_text()).group(1).replace("&amp;", "&")
        assert launch.startswith(url + "/?launch=") and token not in launch
        first = requests.get(launch, allow_redirects=False, timeout=10)
        assert first.status_code == 303 and first.headers["Location"] == f"/?token={token}"
        assert requests.get(url + first.headers["Location"], timeout=10).status_code == 200
        assert not page.exists()  # used: the private page is gone
        again = requests.get(launch, allow_redirects=False, timeout=10)
        assert again.status_code == 403 and "already used" in again.text
        assert requests.get(launch.replace("launch=", "launch=x"), timeout=10).status_code == 403
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# ------------------------------------------------------------ 15. serve + extraction leave no trace
def test_serve_and_rpc_extraction_leave_home_and_tmpdir_untouched(tmp_path, tiny_checkpoint, make_patients):
    home, tmp, rhome, ws = tmp_path / "home", tmp_path / "tmp", tmp_path / "rh", tmp_path / "ws"
    for d in (home, tmp, ws):
        d.mkdir()
    make_patients(tmp_path / "in", n_patients=2, per_folder=1, size=(64, 64))
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "MPLCONFIGDIR", "NUMBA_", "TORCH_HOME"))}
    env = {**clean, "HOME": str(home), "TMPDIR": str(tmp), "RADFEAT_HOME": str(rhome), "PYTHONUNBUFFERED": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}
    add = subprocess.run([sys.executable, "-m", "radfeat", "models", "add", "tiny", str(tiny_checkpoint)],
                         env=env, capture_output=True, text=True, timeout=300)
    assert add.returncode == 0, add.stderr
    proc = subprocess.Popen([sys.executable, "-m", "radfeat", "serve", "--workspace", str(ws), "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        match = None
        while match is None:
            line = proc.stdout.readline()
            assert line, "serve stopped"
            match = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=([\w-]+)", line)
        url, token = match.groups()

        def rpc(method: str, **params):
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            return requests.post(url + "/rpc", json=body, headers={"X-Radfeat-Token": token}, timeout=60).json()

        job = rpc("start_extraction", options={"input": str(tmp_path / "in"), "weights": "tiny"})["result"]
        deadline = time.monotonic() + 300
        while (state := rpc("job_status", job_id=job["job_id"])["result"])["state"] in ("queued", "running"):
            assert time.monotonic() < deadline
            time.sleep(0.3)
        assert state["state"] == "done", state
        assert rpc("start_extraction", options={"input": str(tmp_path / "in"), "filename": "NUL.csv"})["error"]
        assert rpc("read_table", path=job["output"])["result"]["total"] == 2
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert list(home.rglob("*")) == [] and list(tmp.rglob("*")) == []
    shutil.rmtree(rhome)
