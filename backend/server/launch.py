"""Opening the page in a browser without putting the token on a command line.

``webbrowser.open(url)`` starts the browser with the URL as an argument, and every local user can read
a process's arguments (``/proc/PID/cmdline``, ``ps``).  So the browser is given a ``file://`` path
instead: a small HTML page in a private folder of ``$RADFEAT_HOME`` (folder ``0700``, file ``0600``:
unreadable to other users) that redirects to ``/?launch=CODE``.  The code is single-use and short-lived;
the server exchanges it for the real address (``/?token=…``) with a redirect, then deletes the file.
Whoever reads the file after that finds a spent code.
"""

from __future__ import annotations

import hmac
import html
import os
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

LAUNCH_QUERY = "launch"
CODE_LIFETIME_S = 300.0


class LaunchCodes:
    """Single-use codes, each exchanged at most once for the token."""

    def __init__(self) -> None:
        self._codes: dict[str, float] = {}
        self._files: dict[str, Path] = {}
        self._lock = threading.Lock()

    def new(self) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._codes[code] = time.monotonic() + CODE_LIFETIME_S
        return code

    def consume(self, code: str | None) -> bool:
        """True once for a valid, unexpired code; the code (and its launch file) is gone afterwards."""
        if not code:
            return False
        with self._lock:
            match = next((c for c in self._codes if hmac.compare_digest(c.encode(), code.encode("utf-8", "replace"))),
                         None)
            if match is None:
                return False
            deadline = self._codes.pop(match)
            folder = self._files.pop(match, None)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        return time.monotonic() <= deadline

    def write_file(self, base_url: str) -> Path:
        """A fresh code and the private launch page that redirects to it; returns the page's path."""
        from radfeat.weights.home import home

        code = self.new()
        parent = home() / "launch"
        parent.mkdir(mode=0o700, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="open-", dir=parent))  # 0700
        page = folder / "radfeat.html"
        target = html.escape(f"{base_url}/?{LAUNCH_QUERY}={code}", quote=True)
        text = (f'<!doctype html><html><head><meta charset="utf-8"><title>radfeat</title>'
                f'<meta http-equiv="refresh" content="0;url={target}"></head>'
                f'<body><p><a href="{target}">Open radfeat</a></p></body></html>\n')
        fd = os.open(page, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        with self._lock:
            self._files[code] = folder
        return page

    def close(self) -> None:
        """Forget every code and delete the launch pages not used yet (the server is stopping)."""
        with self._lock:
            folders = list(self._files.values())
            self._codes.clear()
            self._files.clear()
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
