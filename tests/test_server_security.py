"""The backend answers only its own window: token, Host and Origin checks over real HTTP, loopback only."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from radfeat.server.app import find_frontend, inject_token
from radfeat.server.serve import BackgroundServer, main, serve

VERSION = {"jsonrpc": "2.0", "method": "version", "id": 1}


@pytest.fixture
def frontend(tmp_path: Path) -> Path:
    page = tmp_path / "web"
    page.mkdir()
    (page / "index.html").write_text("<!doctype html><html><HEAD><title>t</title></HEAD><body>page</body></html>")
    (page / "app.js").write_text("console.log('radfeat');\n")
    (page / "style.css").write_text("body{}\n")
    (page / "notes.py").write_text("print('not an asset')\n")
    return page


@pytest.fixture
def server(tiny_weights: str, workspace: Path, frontend: Path) -> Iterator[BackgroundServer]:
    with BackgroundServer(workspace, frontend=frontend) as srv:
        yield srv


def post(srv: BackgroundServer, payload: object, **headers: str) -> requests.Response:
    hdrs = {"Content-Type": "application/json", **headers}
    return requests.post(srv.url + "/rpc", data=json.dumps(payload), headers=hdrs, timeout=10)


def ok_headers(srv: BackgroundServer) -> dict[str, str]:
    return {"X-Radfeat-Token": srv.token}


# ---------------------------------------------------------------------------- token
def test_token_required(server: BackgroundServer) -> None:
    assert post(server, VERSION, **ok_headers(server)).json()["result"]["radfeat"]
    for headers in ({}, {"X-Radfeat-Token": ""}, {"X-Radfeat-Token": "wrong"},
                    {"X-Radfeat-Token": server.token[:-1]}, {"Authorization": f"Bearer {server.token}"}):
        resp = post(server, VERSION, **headers)
        assert resp.status_code == 403, headers
        assert "token" in resp.json()["message"]
    # the token belongs in the header, not in the URL
    resp = requests.post(f"{server.url}/rpc?token={server.token}", json=VERSION, timeout=10)
    assert resp.status_code == 403


def test_refused_calls_do_nothing(server: BackgroundServer, patients_root: Path, tiny_weights: str) -> None:
    options = {"input": str(patients_root), "weights": tiny_weights}
    start = {"jsonrpc": "2.0", "method": "start_extraction", "params": {"options": options}, "id": 1}
    assert post(server, start).status_code == 403
    assert post(server, start, **ok_headers(server), Origin="http://evil.example").status_code == 403
    assert post(server, start, **{**ok_headers(server), "Host": "evil.example"}).status_code == 403
    # a refused list_folders does not make the folder readable either
    listing = {"jsonrpc": "2.0", "method": "list_folders", "params": {"root": str(patients_root)}, "id": 2}
    assert post(server, listing).status_code == 403
    jobs = post(server, {"jsonrpc": "2.0", "method": "list_jobs", "id": 3}, **ok_headers(server)).json()
    assert jobs["result"] == {"jobs": []}
    thumb = {"jsonrpc": "2.0", "method": "thumbnail", "id": 4,
             "params": {"path": str(patients_root / "p1" / "cxr_00001.jpg")}}
    assert post(server, thumb, **ok_headers(server)).json()["error"]["code"] == -32001
    assert not (server.state.policy.workspace / "DATA").exists()


@pytest.fixture
def patients_root(tmp_path: Path, make_patients) -> Path:
    root = tmp_path / "patients"
    make_patients(root, n_patients=2, per_folder=1)
    return root


# ---------------------------------------------------------------------------- Host / Origin
@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1", "127.0.0.1:1",
                                  "localhost.evil.example:{port}", "0.0.0.0:{port}", "[::1]:{port}", ""])
def test_foreign_host_is_refused(server: BackgroundServer, host: str) -> None:
    headers = {**ok_headers(server), "Host": host.format(port=server.port)}
    resp = post(server, VERSION, **headers)
    assert resp.status_code == 403
    assert "loopback" in resp.json()["message"]
    page = requests.get(f"{server.url}/?token={server.token}", headers={"Host": headers["Host"]}, timeout=10)
    assert page.status_code == 403
    asset = requests.get(f"{server.url}/app.js", headers={"Host": headers["Host"]}, timeout=10)
    assert asset.status_code == 403


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_own_host_is_accepted(server: BackgroundServer, host: str) -> None:
    resp = post(server, VERSION, **ok_headers(server), Host=host.format(port=server.port))
    assert resp.status_code == 200 and resp.json()["result"]["radfeat"]


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1", "http://127.0.0.1:1",
                                    "https://127.0.0.1:{port}", "http://localhost.evil.example:{port}",
                                    "file://"])
def test_foreign_origin_is_refused(server: BackgroundServer, origin: str) -> None:
    origin = origin.format(port=server.port)
    resp = post(server, VERSION, **ok_headers(server), Origin=origin)
    assert resp.status_code == 403
    assert "other web pages" in resp.json()["message"]
    assert "Access-Control-Allow-Origin" not in resp.headers
    pre = requests.options(server.url + "/rpc", timeout=10, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-radfeat-token,content-type"})
    assert pre.status_code == 403 and "Access-Control-Allow-Origin" not in pre.headers


@pytest.mark.parametrize("origin", ["http://127.0.0.1:{port}", "http://localhost:{port}"])
def test_own_origin_is_accepted(server: BackgroundServer, origin: str) -> None:
    resp = post(server, VERSION, **ok_headers(server), Origin=origin.format(port=server.port))
    assert resp.status_code == 200


# ---------------------------------------------------------------------------- the page
def test_page_needs_the_token_and_receives_it(server: BackgroundServer) -> None:
    assert requests.get(server.url + "/", timeout=10).status_code == 403
    assert requests.get(server.url + "/?token=wrong", timeout=10).status_code == 403
    assert requests.get(server.url + "/index.html", timeout=10).status_code == 403
    resp = requests.get(server.launch_url, timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/html")
    assert re.search(r'<HEAD><meta name="radfeat-token" content="([^"]+)">', resp.text).group(1) == server.token
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    assert "connect-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_static_assets_without_token_but_nothing_else(server: BackgroundServer) -> None:
    resp = requests.get(server.url + "/app.js", timeout=10)
    assert resp.status_code == 200 and "radfeat" in resp.text
    assert "javascript" in resp.headers["Content-Type"]
    assert requests.get(server.url + "/style.css", timeout=10).status_code == 200
    for path in ("/notes.py", "/missing.js", "/..%2f..%2fws/x.js", "/%2e%2e/%2e%2e/etc/passwd",
                 "/../../etc/passwd", "/DATA/extracted_features/t.csv"):
        assert requests.get(server.url + path, timeout=10).status_code == 404, path


def test_inject_token_placeholder_and_fallbacks() -> None:
    assert inject_token('<meta name="radfeat-token" content="{{RADFEAT_TOKEN}}">', "abc") == (
        '<meta name="radfeat-token" content="abc">')
    assert inject_token("<html><head lang=x>", "a\"b") == (
        '<html><head lang=x><meta name="radfeat-token" content="a&quot;b">')
    assert inject_token("<p>bare</p>", "t").startswith('<meta name="radfeat-token" content="t">')


def test_real_frontend_is_found_and_served(tiny_weights: str, workspace: Path) -> None:
    found = find_frontend()
    if found is None or not (found / "index.html").is_file():
        pytest.skip("the page (frontend/index.html) is not there yet")
    with BackgroundServer(workspace) as srv:
        resp = requests.get(srv.launch_url, timeout=10)
        assert resp.status_code == 200
        assert f'content="{srv.token}"' in resp.text and "{{RADFEAT_TOKEN}}" not in resp.text


# ---------------------------------------------------------------------------- loopback only
def test_binds_loopback_only(server: BackgroundServer) -> None:
    assert server._server.socket.getsockname()[0] == "127.0.0.1"
    assert server.url.startswith("http://127.0.0.1:")
    assert server.launch_url == f"{server.url}/?token={server.token}"
    assert len(server.token) >= 32


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", ""])
def test_refuses_other_interfaces(workspace: Path, host: str) -> None:
    with pytest.raises(ValueError, match="127.0.0.1 only"):
        BackgroundServer(workspace, host=host)
    with pytest.raises(ValueError, match="127.0.0.1 only"):
        serve(host, 0, workspace)


def test_tokens_differ_per_launch(tiny_weights: str, workspace: Path) -> None:
    with BackgroundServer(workspace) as a, BackgroundServer(workspace) as b:
        assert a.token != b.token and a.port != b.port
        assert post(a, VERSION, **ok_headers(b)).status_code == 403


def test_main_refuses_missing_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--workspace", str(tmp_path / "missing")]) == 2
    assert "workspace folder not found" in capsys.readouterr().err


def test_main_reports_a_busy_port(tiny_weights: str, workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert main(["--port", str(port), "--workspace", str(workspace)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_radfeat_serve_command(tiny_weights: str, workspace: Path) -> None:
    """``radfeat serve`` in its own process prints its URL; the URL's token opens the page and the RPC."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "radfeat", "serve", "--workspace", str(workspace), "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )
    try:
        deadline = time.monotonic() + 60
        url = None
        lines = []
        while time.monotonic() < deadline and url is None:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"(http://127\.0\.0\.1:(\d+))/\?token=([\w-]+)", line)
            if match:
                url, token = match.group(1), match.group(3)
        assert url, "".join(lines)
        resp = requests.post(url + "/rpc", json=VERSION, headers={"X-Radfeat-Token": token}, timeout=10)
        assert resp.json()["result"]["radfeat"]
        assert requests.post(url + "/rpc", json=VERSION, timeout=10).status_code == 403
        proc.terminate()  # SIGTERM stops it cleanly, like Ctrl+C
        assert proc.wait(timeout=20) == 0
        assert "Stopping" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)
