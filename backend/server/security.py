"""What keeps the local backend as safe as the patient images it touches.

Two independent locks:

* **Who may call.**  Every launch makes a random token.  ``/rpc`` needs it in the
  ``X-Radfeat-Token`` header; the page itself (``/``) needs it in the query string
  (the URL printed at start-up) and gets it back injected into the HTML.  Besides
  the token, the ``Host`` header of *every* request must be the app's own loopback
  origin (``127.0.0.1:PORT`` or ``localhost:PORT``: this defeats DNS rebinding),
  and an ``Origin`` header, when a browser sends one, must be that same origin
  (this defeats other local web pages).  A custom header also forces a CORS
  pre-flight that we never grant.  Anything else gets 403 and does nothing.

* **What may be touched.**  Paths sent by the page are resolved (``..`` and
  symbolic links included) and must lie inside the workspace or inside a path the
  user chose (the roots given to ``list_folders``, ``inspect_dates`` and
  ``start_extraction``).  Tables are only ever written under
  ``<workspace>/DATA/extracted_features`` with a name that passes
  :func:`radfeat.options.validate_filename`, exactly as in the CLI.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from radfeat.errors import AccessDenied, InvalidInput
from radfeat.options import OUTPUT_SUBDIR

TOKEN_HEADER = "X-Radfeat-Token"
TOKEN_QUERY = "token"
LOOPBACK_HOST = "127.0.0.1"
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def new_token() -> str:
    """A fresh per-launch token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class PathDenied(AccessDenied, PermissionError):
    """A path outside the workspace and outside everything the user chose."""

    def __init__(self, path: str, message: str | None = None):
        self.path = path
        super().__init__(message or f"Access denied: {path} is outside the workspace and the folders you chose")

    def rpc_data(self) -> dict[str, Any]:
        return {"path": self.path}


class PathInvalid(InvalidInput, ValueError):
    """A path no file system accepts (too long, a NUL character): invalid params (-32602), not an internal error."""

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(message)

    def rpc_data(self) -> dict[str, Any]:
        return {"path": self.path}


class Guard:
    """Token, Host and Origin checks for one running server (the port is set once bound)."""

    def __init__(self, token: str, port: int | None = None):
        if not token:
            raise ValueError("The server token must not be empty")
        self.token = token
        self.port = port

    # -- hosts and origins -------------------------------------------------
    def allowed_hosts(self) -> set[str]:
        if self.port is None:
            return set()
        return {f"{name}:{self.port}" for name in LOOPBACK_NAMES}

    def allowed_origins(self) -> set[str]:
        return {f"http://{host}" for host in self.allowed_hosts()}

    def host_ok(self, host: str | None) -> bool:
        return bool(host) and host.lower() in self.allowed_hosts()

    def origin_ok(self, origin: str | None) -> bool:
        """No Origin (scripts, same-origin GETs) is fine; a present one must be ours ("null" is not)."""
        if origin is None:
            return True
        return origin.lower().rstrip("/") in self.allowed_origins()

    def token_ok(self, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(token.encode("utf-8", "replace"), self.token.encode("utf-8"))

    def refusal(self, *, host: str | None, origin: str | None, token: str | None, need_token: bool) -> str | None:
        """Why a request must be refused (a human sentence), or ``None`` when it may proceed."""
        if not self.host_ok(host):
            return "Forbidden: this service only answers on its own loopback address"
        if not self.origin_ok(origin):
            return "Forbidden: requests from other web pages are not accepted"
        if need_token and not self.token_ok(token):
            return "Forbidden: missing or wrong token (open the URL printed when radfeat started)"
        return None


def _resolve(path: str | Path, base: Path) -> Path:
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = base / p
    return p.resolve()


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


class PathPolicy:
    """Resolves paths from the page and keeps them within the workspace and what the user chose."""

    def __init__(self, workspace: str | Path):
        self.workspace = Path(workspace).expanduser().resolve()
        self._chosen: set[Path] = set()
        self._lock = threading.Lock()

    @property
    def output_dir(self) -> Path:
        return self.workspace / OUTPUT_SUBDIR

    def resolve(self, path: str | Path) -> Path:
        """Absolute, normalised, symlinks followed; relative paths are taken from the workspace."""
        if not isinstance(path, str | Path) or str(path) == "":
            raise ValueError("A path is required")
        if "\x00" in str(path):
            raise PathDenied(repr(path), "Access denied: the path contains a NUL character")
        from radfeat.output.paths import path_problem

        problem = path_problem(str(path), "The")
        if problem:
            raise PathInvalid(str(path)[:200] + ("…" if len(str(path)) > 200 else ""), problem)
        return _resolve(path, self.workspace)

    def choose(self, path: str | Path) -> Path:
        """Record a path the user chose (a folder or a file); returns it resolved."""
        resolved = self.resolve(path)
        with self._lock:
            self._chosen.add(resolved)
        return resolved

    def chosen(self) -> list[Path]:
        with self._lock:
            return sorted(self._chosen)

    def roots(self) -> Iterable[Path]:
        return [self.workspace, *self.chosen()]

    def allowed(self, path: Path) -> bool:
        return any(_inside(path, root) for root in self.roots())

    def check_read(self, path: str | Path) -> Path:
        """Resolve ``path`` and refuse it unless it lies in the workspace or under something chosen."""
        resolved = self.resolve(path)
        if not self.allowed(resolved):
            raise PathDenied(str(path))
        return resolved

    def open_read(self, path: str | Path) -> tuple[BinaryIO, Path]:
        """Open a file for reading and check **what was opened**, not a name looked up earlier.

        The name is resolved and checked, opened with ``O_NOFOLLOW`` (``O_NONBLOCK`` so a FIFO cannot
        hang the server), then the open descriptor's real path is checked again against the allowed
        roots: a folder swapped for a link between the check and the open is caught.  Returns the file
        (read from the same descriptor) and its real path.
        """
        resolved = self.check_read(path)
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(resolved, flags | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            if isinstance(exc, FileNotFoundError | IsADirectoryError):
                raise FileNotFoundError(exc.errno, exc.strerror, str(path)) from None
            if os.path.islink(resolved):
                raise PathDenied(str(path)) from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise FileNotFoundError(2, "not a regular file", str(path))
            real = _fd_real_path(fd, resolved)
            if real is None or not self.allowed(real):
                raise PathDenied(str(path))
            if hasattr(os, "O_NONBLOCK"):  # opened non-blocking (POSIX): reads block normally again
                os.set_blocking(fd, True)
            return os.fdopen(fd, "rb"), real
        except BaseException:
            os.close(fd)
            raise

    def check_below(self, root: Path, relative: str) -> Path:
        """A relative path (e.g. a selected patient folder) that must stay below ``root``."""
        if not isinstance(relative, str) or relative in ("", ".") or "\x00" in relative:
            raise PathDenied(repr(relative), f"Access denied: {relative!r} is not a folder below {root}")
        if Path(relative).is_absolute():
            raise PathDenied(relative, f"Access denied: {relative} must be relative to {root}")
        resolved = (root / relative).resolve()
        if not _inside(resolved, root) or resolved == root:
            raise PathDenied(relative, f"Access denied: {relative} is not below {root}")
        return resolved

    def output_allowed(self, path: Path) -> bool:
        """Tables go to ``<workspace>/DATA/extracted_features/<name>`` and nowhere else."""
        return path.parent == self.output_dir.resolve()


def _fd_real_path(fd: int, opened: Path) -> Path | None:
    """Where the open descriptor really is (Linux: /proc; macOS: F_GETPATH; else: the same inode as the name)."""
    proc = Path(f"/proc/self/fd/{fd}")
    if proc.is_symlink():
        target = os.readlink(proc)
        return Path(target) if target.startswith("/") and not target.endswith(" (deleted)") else None
    if sys.platform == "darwin":
        import fcntl

        raw = fcntl.fcntl(fd, getattr(fcntl, "F_GETPATH", 50), b"\0" * 1024)
        return Path(raw.split(b"\0", 1)[0].decode())
    st, now = os.fstat(fd), os.stat(opened.resolve())
    return opened.resolve() if (st.st_dev, st.st_ino) == (now.st_dev, now.st_ino) else None
