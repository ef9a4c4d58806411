"""What several test files share: the CLI in a subprocess, a JSON-RPC client over real HTTP, a file server on
loopback for download tests, ARFF read back with liac-arff, and where Chromium is (browser and window tests).
Fixtures live in conftest.py."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import arff
import numpy as np
import pytest
import requests
from radfeat.pipeline.run import extract as real_extract
from radfeat.server.serve import BackgroundServer


def radfeat(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``radfeat ARGS`` in a fresh process (the installed entry point's code path)."""
    proc = subprocess.run([sys.executable, "-m", "radfeat", *args], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def read_arff(path: Path) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of an ARFF file as WEKA's format defines it (liac-arff; '?' is None)."""
    with open(path, encoding="utf-8") as fh:
        data = arff.load(fh)
    return [name for name, _ in data["attributes"]], [list(row) for row in data["data"]]


# ---------------------------------------------------------------------------------------------------
# JSON-RPC over real HTTP
class Client:
    def __init__(self, srv: BackgroundServer):
        self.url = srv.url + "/rpc"
        self.headers = {"X-Radfeat-Token": srv.token}
        self.n = 0

    def raw(self, method: str, **params: Any) -> dict[str, Any]:
        self.n += 1
        payload = {"jsonrpc": "2.0", "id": self.n, "method": method, "params": params}
        resp = requests.post(self.url, json=payload, headers=self.headers, timeout=30)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def __call__(self, method: str, **params: Any) -> Any:
        answer = self.raw(method, **params)
        assert "error" not in answer, answer
        return answer["result"]

    def wait(self, job_id: str, timeout: float = 60, seen: list[dict] | None = None,
             until: Callable[[dict], bool] | None = None) -> dict[str, Any]:
        until = until or (lambda st: st["state"] not in ("queued", "running"))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self("job_status", job_id=job_id)
            if seen is not None:
                seen.append(st)
            if until(st):
                return st
            time.sleep(0.02)
        raise AssertionError(f"job {job_id} did not get there in {timeout}s: {st}")


@contextlib.contextmanager
def serving(workspace: Path, extract_fn: Callable[..., Any] | None = None) -> Iterator[tuple[BackgroundServer, Client]]:
    with BackgroundServer(workspace, extract_fn=extract_fn) as srv:
        yield srv, Client(srv)



def slowed(delay: float) -> Callable[..., Any]:
    """The real engine, with every progress report held for ``delay`` seconds."""

    def run(opts: Any, *, progress: Callable, cancel: threading.Event, log: Callable) -> Any:
        def slow(p: Any) -> None:
            progress(p)
            time.sleep(delay)

        return real_extract(opts, progress=slow, cancel=cancel, log=log)

    return run


class Gate:
    """The real engine, paused after its first extracted batch until :meth:`release`."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.paused = threading.Event()
        self.once = True

    def release(self) -> None:
        self.opened.set()

    def __call__(self, opts: Any, *, progress: Callable, cancel: threading.Event, log: Callable) -> Any:
        def gated(p: Any) -> None:
            progress(p)
            if self.once and p.stage == "extracting" and p.done > 0:
                self.once = False
                self.paused.set()
                assert self.opened.wait(30), "test never released the gate"

        return real_extract(opts, progress=gated, cancel=cancel, log=log)


# ---------------------------------------------------------------------------------------------------
# A download server on 127.0.0.1
def closed_port_url() -> str:
    """An address on 127.0.0.1 where nothing listens (the port was free a moment ago): a server that is offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FileServer:
    """One file served over HTTP on 127.0.0.1 (every path gives the same bytes): GET with Range, HEAD.

    ``with FileServer(payload) as files:`` starts it on a free port (``files.url``) and stops it on exit.
    What a test may change while it runs: ``head_ok = False`` refuses HEAD (405); ``pace``, an Event: the body
    goes out in 64 kB pieces, one per ``pace.wait(0.05)`` (never set: a slow download; set: full speed), except
    the 1-byte ``bytes=0-0`` probe.  ``ranges``: the Range header of every GET, in order (None without one).
    """

    PIECE = 1 << 16

    def __init__(self, payload: bytes, *, head_ok: bool = True, pace: threading.Event | None = None) -> None:
        self.payload, self.head_ok, self.pace = payload, head_ok, pace
        self.ranges: list[str | None] = []
        self._httpd: ThreadingHTTPServer | None = None
        self.url = ""

    def __enter__(self) -> FileServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FileHandler)
        self._httpd.files = self  # type: ignore[attr-defined]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()

    def span(self, rng: str | None) -> tuple[int, int]:
        """First and last byte asked for by a Range header (``bytes=a-b`` or ``bytes=a-``); the whole file without."""
        start, end = 0, len(self.payload) - 1
        if rng:
            first, last = rng.split("=")[1].split("-")
            start, end = int(first), int(last) if last else end
        return start, end


class _FileHandler(BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # noqa: N802
        files: FileServer = self.server.files  # type: ignore[attr-defined]
        if not files.head_ok:
            self.send_error(405)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(files.payload)))
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802
        files: FileServer = self.server.files  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        files.ranges.append(rng)
        start, end = files.span(rng)
        body = files.payload[start:end + 1]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(files.payload)}")
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client stopped (a cancel)
            if files.pace is None or rng == "bytes=0-0":
                self.wfile.write(body)
                return
            for at in range(0, len(body), files.PIECE):
                files.pace.wait(0.05)
                self.wfile.write(body[at:at + files.PIECE])
                self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


# ---------------------------------------------------------------------------------------------------
# Chromium
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


def synthetic_table(folder: Path, *, n_patients: int = 40, per_patient: int = 3, n_features: int = 12,
                    signal: float = 4.0, seed: int = 0, shuffle: bool = False) -> tuple[Path, Path]:
    """A plain radfeat table (level_1, filename, img_densefeatures_*) and a labels CSV (filename, label).

    The label is the patient's; feature 0 carries ``signal`` times it (plus noise); the other features
    are noise.  ``shuffle`` shuffles the labels across patients so that the shuffled labels agree with
    the signal's for exactly half of each class (no association left, even by chance), so nothing can be learnt.
    """
    rng = np.random.default_rng(seed)
    labels = np.array([i % 2 for i in range(n_patients)])
    truth = labels
    if shuffle:
        truth = np.zeros_like(labels)
        for cls in (0, 1):
            members = rng.permutation(np.flatnonzero(labels == cls))
            truth[members[: len(members) // 2]] = 1
    table, lab = folder / "features.csv", folder / "labels.csv"
    with open(table, "w", newline="") as ft, open(lab, "w", newline="") as fl:
        wt, wl = csv.writer(ft), csv.writer(fl)
        wt.writerow(["level_1", "filename", *(f"img_densefeatures_{j}" for j in range(n_features))])
        wl.writerow(["filename", "effusion"])
        for p in range(n_patients):
            for k in range(per_patient):
                x = rng.normal(size=n_features)
                x[0] += signal * labels[p]
                name = f"cxr_p{p}_{k}.jpg"
                wt.writerow([f"p{p}", name, *(f"{v:.6g}" for v in x)])
                wl.writerow([name, "yes" if truth[p] else "no"])
    return table, lab
