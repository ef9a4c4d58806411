"""``radfeat gui``: the Image Extraction page in a desktop window (pywebview).

The window is a thin shell around the same page a browser gets from ``radfeat serve``:

1. start the local backend (:class:`radfeat.server.serve.BackgroundServer`) on a free
   127.0.0.1 port with a fresh per-launch token;
2. open a pywebview window on its launch URL, with a small ``js_api`` object that
   gives the page native folder and file dialogs (the page feature-detects
   ``window.pywebview`` and falls back to typed paths in a browser);
3. when the window closes, stop the backend: running jobs are cancelled after their
   current batch and stay resumable.

Without a usable GUI toolkit (pywebview missing, no display, neither Qt WebEngine nor
GTK WebKit importable) it says why and prints the ``radfeat serve`` alternative.

``RADFEAT_GUI_SMOKE=<seconds>`` (tests, ``scripts/gui_smoke.sh``): once the page is
loaded and talks to the backend, print one JSON line describing the window and close
it; exit status 0 only if the page came up connected with the native dialogs.
``RADFEAT_GUI_SMOKE_HOLD=<seconds>`` keeps the window up that long after the check.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radfeat.server.serve import BackgroundServer

TITLE = "radfeat · Image Extraction"
SIZE = (1280, 860)
MIN_SIZE = (420, 480)
SMOKE_ENV = "RADFEAT_GUI_SMOKE"
SMOKE_HOLD_ENV = "RADFEAT_GUI_SMOKE_HOLD"


# ---------------------------------------------------------------------------
class DialogApi:
    """What the page may ask the desktop shell for: native dialogs, nothing else.

    pywebview exposes every public method (and walks public attributes) to JavaScript as
    ``window.pywebview.api.<name>``; the window reference is therefore kept private.
    """

    def __init__(self) -> None:
        self._window: Any = None

    def _bind(self, window: Any) -> None:
        self._window = window

    @staticmethod
    def _start_dir(initial: str | None) -> str:
        if not initial:
            return ""
        path = Path(str(initial)).expanduser()
        while not path.is_dir() and path != path.parent:
            path = path.parent
        return str(path) if path.is_dir() else ""

    def _dialog(self, kind: str, initial: str | None, file_types: Sequence[str] = ()) -> str | None:
        chosen = self._dialog_many(kind, initial, file_types, multiple=False)
        return chosen[0] if chosen else None

    def _dialog_many(self, kind: str, initial: str | None, file_types: Sequence[str] = (),
                     multiple: bool = True) -> list[str]:
        if self._window is None:  # no window bound (tests, or before the window exists): nothing opens
            return []
        import webview  # the gui extra: present whenever a window exists

        dialogs = getattr(webview, "FileDialog", None)  # pywebview >= 5; older: *_DIALOG constants
        if kind == "folder":
            dtype = dialogs.FOLDER if dialogs else webview.FOLDER_DIALOG  # type: ignore[attr-defined]
        else:
            dtype = dialogs.OPEN if dialogs else webview.OPEN_DIALOG  # type: ignore[attr-defined]
        result = self._window.create_file_dialog(dtype, directory=self._start_dir(initial), allow_multiple=multiple,
                                                 file_types=tuple(file_types))
        if not result:
            return []
        if isinstance(result, (str, bytes)):
            return [os.fsdecode(result)]
        return [os.fsdecode(item) for item in result]

    def ping(self) -> str:
        """A round trip through the bridge (the smoke test checks that values come back)."""
        return "radfeat"

    def choose_folder(self, initial: str | None = None) -> str | None:
        """A native folder picker; the chosen folder's path, or ``None`` if cancelled."""
        return self._dialog("folder", initial)

    def choose_file(self, initial: str | None = None, kind: str | None = None) -> str | None:
        """A native file picker (``kind='csv'`` filters CSV files); the path, or ``None`` if cancelled."""
        types = ("CSV files (*.csv)", "All files (*.*)") if kind == "csv" else ()
        return self._dialog("file", initial, types)

    def pick_files(self, initial: str | None = None, kind: str | None = None) -> list[str]:
        """A native picker for several files (``kind='weights'`` filters checkpoints); ``[]`` if cancelled."""
        types = ("Weight files (*.pt;*.pth;*.ckpt;*.onnx)", "All files (*.*)") if kind == "weights" else ()
        return self._dialog_many("file", initial, types)

    def pick_folder(self, initial: str | None = None) -> str | None:
        """A native folder picker (the weights folder to import, an input folder); ``None`` if cancelled."""
        return self._dialog("folder", initial)


# ---------------------------------------------------------------------------
def _import_error(module: str) -> str | None:
    try:
        importlib.import_module(module)
    except Exception as exc:  # ImportError, or a toolkit that fails while loading its libraries
        return f"{type(exc).__name__}: {exc}"
    return None


def pick_gui() -> tuple[str | None, str | None]:
    """``(toolkit, problem)``: the pywebview GUI to force (``None``: its own choice) or why none works here."""
    problem = _import_error("webview")
    if problem:
        return None, f"pywebview is not installed ({problem}); install it with: pip install 'radfeat[gui]'"
    forced = os.environ.get("PYWEBVIEW_GUI", "").lower()
    if not sys.platform.startswith("linux") or forced not in ("", "qt", "gtk"):
        return None, None  # Windows (WebView2), macOS (WebKit) or a toolkit the user forced
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return None, "there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
    gtk = _import_error("gi") if forced != "qt" else "not tried"
    if gtk is None:
        return None, None  # pywebview prefers GTK on Linux
    qt = _import_error("qtpy.QtWebEngineWidgets") if forced != "gtk" else "not tried"
    if qt is None:
        return "qt", None  # say so, or pywebview prints a GTK traceback before falling back to Qt
    return None, ("neither Qt WebEngine nor GTK WebKit can be loaded "
                  f"(Qt: {qt}; GTK: {gtk}); install 'pywebview[qt]' and the Qt system libraries")


def _prepare_environment() -> None:
    # Chromium (inside Qt WebEngine) refuses to start as root with its sandbox on.
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        os.environ.setdefault("QTWEBENGINE_DISABLE_SANDBOX", "1")


def _fallback_message(workspace: Path, problem: str) -> str:
    folder = str(workspace)
    quoted = f'"{folder}"' if " " in folder else folder
    return (f"radfeat gui: cannot open a desktop window: {problem}.\n"
            "Use the page in a browser instead:\n"
            f"    radfeat serve --workspace {quoted}\n"
            "and open the http://127.0.0.1:PORT/?token=... address it prints.")


# ---------------------------------------------------------------------------
def _smoke(window: Any, seconds: float, report: dict[str, Any]) -> None:
    """Wait for the page to come up connected, record what it shows, then close the window."""
    deadline = time.monotonic() + seconds
    try:
        report["loaded"] = bool(window.events.loaded.wait(max(1.0, deadline - time.monotonic())))
        window.run_js("window.pywebview && window.pywebview.api && window.pywebview.api.ping()"
                      ".then(function (v) { document.body.dataset.bridge = v; })")
        while time.monotonic() < deadline:
            probe = window.evaluate_js(
                "JSON.stringify({title: document.title, bridge: document.body.dataset.bridge || null,"
                " conn: (document.getElementById('conn') || {dataset: {}}).dataset.state || null,"
                " connText: (document.getElementById('conn-text') || {}).textContent || null,"
                " native: document.body.classList.contains('native'),"
                " weights: document.querySelectorAll('#weights option:not([value=\"\"])').length,"
                " width: window.innerWidth, height: window.innerHeight})"
            )
            info = json.loads(probe) if isinstance(probe, str) else (probe or {})
            report.update(info)
            if (info.get("conn") == "up" and info.get("native") and info.get("weights", 0) > 0
                    and info.get("bridge") == "radfeat"):
                break
            time.sleep(0.25)
    except Exception as exc:  # report, never hang the window open
        report["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        report["ok"] = bool(report.get("loaded") and report.get("conn") == "up" and report.get("native")
                            and report.get("bridge") == "radfeat")
        print(f"radfeat gui smoke: {'ready' if report['ok'] else 'not ready'}", flush=True)
        hold = os.environ.get(SMOKE_HOLD_ENV)
        if hold:  # keep the window up a moment (a test grabs the screen)
            time.sleep(min(float(hold), 30.0))
        window.destroy()


def run(workspace: str | Path = ".", *, debug: bool = False) -> int:
    """Open the window on a fresh backend; returns when the window is closed."""
    folder = Path(workspace).expanduser()
    if not folder.is_dir():
        print(f"radfeat gui: workspace folder not found: {workspace}", file=sys.stderr)
        return 2
    _prepare_environment()
    toolkit, problem = pick_gui()
    if problem:
        print(_fallback_message(folder.resolve(), problem), file=sys.stderr)
        return 1

    import webview
    try:
        server = BackgroundServer(folder, window_bridge=True)
        server.start()
    except OSError as exc:
        print(f"radfeat gui: cannot start the backend on 127.0.0.1: {exc.strerror or exc}", file=sys.stderr)
        return 1

    smoke = os.environ.get(SMOKE_ENV)
    report: dict[str, Any] = {"url": server.url}
    api = DialogApi()
    try:
        window = webview.create_window(TITLE, server.launch_url, js_api=api, width=SIZE[0], height=SIZE[1],
                                       min_size=MIN_SIZE, text_select=True)
        api._bind(window)
        print(f"radfeat gui: backend on {server.url} (workspace {server.state.policy.workspace})", flush=True)
        if smoke:
            webview.start(_smoke, (window, float(smoke), report), gui=toolkit, debug=debug)
        else:
            webview.start(gui=toolkit, debug=debug)
    except Exception as exc:  # the toolkit failed to start: say so, offer the browser
        print(_fallback_message(folder.resolve(), f"{type(exc).__name__}: {exc}"), file=sys.stderr)
        return 1
    finally:
        running = [j for j in server.state.jobs.jobs() if j.active]
        if running:
            print("radfeat gui: window closed; cancelling the running extraction (run it again to resume)",
                  flush=True)
        stopper = threading.Thread(target=server.stop, name="radfeat-stop", daemon=True)
        stopper.start()
        stopper.join(35)
    if smoke:
        print(json.dumps({"radfeat_gui_smoke": report}), flush=True)
        return 0 if report.get("ok") else 3
    return 0


def main(argv: Sequence[str] | argparse.Namespace | None = None) -> int:
    """``radfeat gui``: ``argv`` are the arguments after ``gui``, or the CLI's parsed namespace."""
    if isinstance(argv, argparse.Namespace):
        return run(getattr(argv, "workspace", ".") or ".", debug=bool(getattr(argv, "debug", False)))
    parser = argparse.ArgumentParser(prog="radfeat gui", description="Open the Image Extraction page in a window.")
    parser.add_argument("--workspace", default=".", help="workspace folder; tables go to DATA/extracted_features")
    parser.add_argument("--debug", action="store_true", help="enable the web inspector")
    args = parser.parse_args(list(argv) if argv is not None else None)
    return run(args.workspace, debug=args.debug)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
