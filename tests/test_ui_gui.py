"""``radfeat gui``: a real pywebview (Qt WebEngine) window under Xvfb, and its fallbacks.

The window test starts Xvfb with a memory-mapped framebuffer (``-fbdir``), runs
``radfeat gui`` with ``RADFEAT_GUI_SMOKE`` (the window checks that its page loaded,
reached the backend and has the native-dialog bridge, then closes itself) and saves
what the screen showed as ``tests/artifacts/gui_window.png``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import artifact
from PIL import Image


def _qt_webengine_problem() -> str | None:
    if importlib.util.find_spec("webview") is None:
        return "pywebview is not installed"
    code = "import qtpy.QtWebEngineWidgets"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return None if proc.returncode == 0 else f"Qt WebEngine cannot be imported: {proc.stderr.strip()[-300:]}"


def xwd_to_image(path: Path) -> Image.Image:
    """Read the XWD framebuffer file Xvfb keeps in ``-fbdir`` (24/32-bit TrueColor)."""
    data = path.read_bytes()
    fields = np.frombuffer(data[:100], dtype=">u4")
    header_size, width, height = int(fields[0]), int(fields[4]), int(fields[5])
    byte_order, bpp, bytes_per_line, ncolors = int(fields[7]), int(fields[11]), int(fields[12]), int(fields[19])
    if bpp != 32:
        raise ValueError(f"unsupported XWD depth: {bpp} bits per pixel")
    start = header_size + 12 * ncolors
    raw = np.frombuffer(data[start:start + bytes_per_line * height], dtype=np.uint8)
    px = raw.reshape(height, bytes_per_line)[:, : width * 4].reshape(height, width, 4)
    rgb = px[..., [2, 1, 0]] if byte_order == 0 else px[..., [1, 2, 3]]  # LSBFirst: B G R X
    return Image.fromarray(np.ascontiguousarray(rgb), "RGB")


# ---------------------------------------------------------------------------
def test_dialog_api_exposes_only_dialogs():
    from radfeat.desktop.window import DialogApi

    api = DialogApi()
    public = sorted(n for n in dir(api) if not n.startswith("_"))
    assert public == ["choose_file", "choose_folder", "pick_files", "pick_folder", "ping"]
    assert api.choose_folder("/") is None  # no window bound: nothing opens, nothing breaks
    assert api.pick_files("/", kind="weights") == [] and api.pick_folder("/") is None
    assert DialogApi._start_dir("/definitely/not/here/file.csv") == "/"


def test_only_the_window_server_allows_the_bridge_eval(tmp_path):
    """pywebview's bridge needs ``eval``; only the desktop window's private server permits it."""
    import requests
    from radfeat.server.serve import BackgroundServer

    for bridge, expected in ((False, False), (True, True)):
        with BackgroundServer(tmp_path, window_bridge=bridge) as srv:
            policy = requests.get(srv.launch_url, timeout=10).headers["Content-Security-Policy"]
        script_src = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
        assert ("'unsafe-eval'" in script_src) is expected
        assert "default-src 'self'" in policy and "'unsafe-eval'" not in policy.replace(script_src, "")


def test_gui_without_display_says_so_and_offers_serve(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "PYWEBVIEW_GUI")}
    if sys.platform.startswith("linux") is False:
        pytest.skip("the no-display case is a Linux one")
    proc = subprocess.run([sys.executable, "-m", "radfeat", "gui", "--workspace", str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    assert "cannot open a desktop window" in proc.stderr
    assert f"radfeat serve --workspace {tmp_path}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_gui_missing_workspace(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "radfeat", "gui", "--workspace", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "workspace folder not found" in proc.stderr


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="Xvfb is not installed (apt-get install xvfb)")
def test_gui_opens_a_window_under_xvfb(tmp_path, radfeat_home):
    problem = _qt_webengine_problem()
    if problem:
        pytest.skip(problem)
    fbdir = tmp_path / "fb"
    fbdir.mkdir()
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1366x900x24", "-fbdir", str(fbdir),
                             "-nolisten", "tcp"], pass_fds=[write_fd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as fh:
            display = fh.readline().strip()
        assert display, "Xvfb did not report its display"
        env = dict(os.environ, DISPLAY=f":{display}", RADFEAT_GUI_SMOKE="90", RADFEAT_GUI_SMOKE_HOLD="2",
                   RADFEAT_HOME=str(radfeat_home))
        env.pop("WAYLAND_DISPLAY", None)
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            env["QTWEBENGINE_CHROMIUM_FLAGS"] = (env.get("QTWEBENGINE_CHROMIUM_FLAGS", "") + " --no-sandbox").strip()
        ws = tmp_path / "ws"
        ws.mkdir()
        stderr_path = tmp_path / "gui.stderr"
        with open(stderr_path, "w") as err:
            proc = subprocess.Popen([sys.executable, "-m", "radfeat", "gui", "--workspace", str(ws)], env=env,
                                    stdout=subprocess.PIPE, stderr=err, text=True)
            killer = threading.Timer(150, proc.kill)
            killer.start()
            lines: list[str] = []
            shot = None
            try:
                for line in proc.stdout:
                    lines.append(line)
                    if line.startswith("radfeat gui smoke: ready"):
                        shot = xwd_to_image(fbdir / "Xvfb_screen0")
                rc = proc.wait()
            finally:
                killer.cancel()
        out = "".join(lines)
        if shot is not None:
            shot.save(artifact("gui_window.png"))
        reports = [json.loads(line)["radfeat_gui_smoke"] for line in lines if line.startswith('{"radfeat_gui_smoke"')]
        assert reports, f"no smoke report\nstdout:\n{out}\nstderr:\n{stderr_path.read_text()[-3000:]}"
        report = reports[-1]
        assert rc == 0, f"{report}\n{stderr_path.read_text()[-3000:]}"
        assert report["title"] == "radfeat · Image Extraction"
        assert report["conn"] == "up" and report["connText"].startswith("Connected")
        assert report["native"] is True and report["bridge"] == "radfeat"  # dialogs reachable from the page
        assert report["weights"] >= 1
        assert shot is not None
        # something was drawn: the window is not a blank screen
        assert np.asarray(shot).std() > 5
    finally:
        xvfb.terminate()
        xvfb.wait(10)
