"""The one safe writer: every file radfeat writes goes through here.

Rules, for tables, partial tables (appends too), side files, saliency PNGs, lock files, ONNX exports
and downloads alike:

* **Never through a symbolic link.**  Below a *trusted root* (the workspace, ``$RADFEAT_HOME``;
  see :func:`trust_root`) every folder is opened one component at a time with ``O_NOFOLLOW``
  relative to its parent's descriptor, and the file itself is opened with ``O_NOFOLLOW``.  A link
  anywhere there raises :class:`UnsafePath`; a folder swapped for a link after a check is caught
  too, because nothing is ever looked up again by path.  Outside a trusted root (a full ``--output``
  path) the file's own folder is the root: the file and nothing above its folder is checked.
* **Atomic.**  A new file is written to a fresh temporary name created with ``O_EXCL`` in the
  target's own folder, fsynced, then renamed over the target (rename replaces a name, it never
  follows it).

On systems without ``dir_fd`` support (Windows) the same checks are made with ``lstat`` on each
component before the write.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from radfeat.errors import AccessDenied

_FD_OPS = os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd and os.rename in os.supports_dir_fd
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_PROC_FD = Path("/proc/self/fd")

_roots: set[Path] = set()
_roots_lock = threading.Lock()


class UnsafePath(AccessDenied, OSError):
    """A write would go through a symbolic link (or onto something that is not a plain file): exit 2, RPC -32001."""


def trust_root(path: str | Path) -> Path:
    """Declare ``path`` (a workspace, the radfeat home) a root: every component below it is checked."""
    root = Path(os.path.abspath(Path(path).expanduser()))
    with _roots_lock:
        _roots.add(root)
    return root


def _root_for(target: Path) -> Path:
    """The deepest trusted root that holds ``target``, else the target's own folder."""
    with _roots_lock:
        found = [r for r in _roots if target.parent == r or r in target.parent.parents]
    return max(found, key=lambda r: len(r.parts)) if found else target.parent


def _absolute(target: str | Path) -> Path:
    return Path(os.path.abspath(Path(target).expanduser()))  # normalises '..' without following links


def _link_error(path: Path) -> UnsafePath:
    return UnsafePath(f"{path} is a symbolic link; radfeat never writes through links (remove it or choose "
                      "another name)")


def link_below(target: str | Path, root: str | Path | None = None) -> Path | None:
    """The first symbolic link among ``target`` and its folders below its root, or None (validation uses this)."""
    target = _absolute(target)
    root = _absolute(root) if root is not None else _root_for(target)
    rel = target.relative_to(root).parts if target != root else ()
    path = root
    for part in rel:
        path = path / part
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return path
        except FileNotFoundError:
            return None
    return None


@contextlib.contextmanager
def _folder_fd(folder: Path, root: Path, create: bool = True) -> Iterator[int]:
    """A descriptor of ``folder``, reached from ``root`` one component at a time without following links."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    try:
        path = root
        for part in folder.relative_to(root).parts:
            path = path / part
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
            try:
                child = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=fd)
            except OSError as exc:
                if os.path.islink(path):
                    raise _link_error(path) from None
                raise UnsafePath(f"{path} is not a folder ({exc.strerror})") from None
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _check_plain_path(target: Path, root: Path) -> None:
    """Fallback without ``dir_fd``: refuse a link anywhere below ``root``, create the folders."""
    link = link_below(target, root)
    if link is not None:
        raise _link_error(link)
    target.parent.mkdir(parents=True, exist_ok=True)


def _check_leaf(name: str, target: Path, fd: int) -> None:
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise _link_error(target)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePath(f"{target} exists and is not a plain file")


def _fd_path(fd: int, name: str, fallback: Path) -> Path:
    """A path to ``name`` in the folder open as ``fd`` that no later folder swap can redirect (Linux)."""
    proc = _PROC_FD / str(fd)
    return proc / name if _PROC_FD.is_dir() else fallback


def ensure_folder(folder: str | Path, root: str | Path | None = None) -> Path:
    """Create ``folder`` (and its parents below the root) refusing links; returns it."""
    folder = _absolute(folder)
    root_path = _absolute(root) if root is not None else _root_for(folder / "x")
    if _FD_OPS:
        with _folder_fd(folder, root_path):
            pass
    else:
        _check_plain_path(folder / "x", root_path)
    return folder


@contextlib.contextmanager
def _atomic(target: str | Path, root: str | Path | None) -> Iterator[tuple[Path, int]]:
    """The temporary file's path and its open descriptor (``O_EXCL`` | ``O_NOFOLLOW``); replaces ``target`` on success."""
    target = _absolute(target)
    root_path = _absolute(root) if root is not None else _root_for(target)
    tmp_name = f".{target.name[:120]}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC | getattr(os, "O_BINARY", 0)
    if not _FD_OPS:
        _check_plain_path(target, root_path)
        tmp = target.with_name(tmp_name)
        fd = os.open(tmp, flags, 0o666)
        try:
            yield tmp, fd
            os.fsync(fd)
            if os.path.islink(target):
                raise _link_error(target)
            _close(fd)
            os.replace(tmp, target)
        finally:
            _close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return
    with _folder_fd(target.parent, root_path) as dfd:
        _check_leaf(target.name, target, dfd)
        fd = os.open(tmp_name, flags, 0o666, dir_fd=dfd)
        try:
            yield _fd_path(dfd, tmp_name, target.with_name(tmp_name)), fd
            os.fsync(fd)
            _check_leaf(target.name, target, dfd)
            if not os.path.samestat(os.fstat(fd), os.stat(tmp_name, dir_fd=dfd, follow_symlinks=False)):
                raise UnsafePath(f"the temporary file for {target} was replaced while it was written")
            os.replace(tmp_name, target.name, src_dir_fd=dfd, dst_dir_fd=dfd)
            with contextlib.suppress(OSError):
                os.fsync(dfd)
        finally:
            _close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name, dir_fd=dfd)


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | Path, root: str | Path | None = None) -> Iterator[Path]:
    """Yield a fresh temporary path in the target's folder; it replaces ``target`` when the block succeeds.

    For libraries that want a path (ONNX export, quantiser).  Prefer :func:`atomic_open`, which writes through
    the descriptor created with ``O_EXCL`` and never looks the name up again.
    """
    with _atomic(target, root) as (tmp, _fd):
        yield tmp


@contextlib.contextmanager
def atomic_open(target: str | Path, mode: str = "w", root: str | Path | None = None,
                **kwargs: object) -> Iterator[IO]:
    """A file object on a fresh temporary file that atomically replaces ``target`` when the block succeeds."""
    with _atomic(target, root) as (_tmp, fd), os.fdopen(os.dup(fd), mode, **kwargs) as fh:  # type: ignore[call-overload]
        yield fh


def write_text_atomic(target: str | Path, text: str, root: str | Path | None = None) -> None:
    with atomic_open(target, "w", root, encoding="utf-8") as fh:
        fh.write(text)


def write_bytes_atomic(target: str | Path, data: bytes, root: str | Path | None = None) -> None:
    with atomic_open(target, "wb", root) as fh:
        fh.write(data)


def open_file(target: str | Path, mode: str = "ab", root: str | Path | None = None, buffering: int = -1) -> IO:
    """Open an existing file (``mode`` ``ab``, ``rb`` or ``rb+``) without following a link at any level below the root.

    ``ab`` creates the file when it is missing.  Used for the streaming partial table and resumable downloads.
    """
    target = _absolute(target)
    root_path = _absolute(root) if root is not None else _root_for(target)
    flags = {"ab": os.O_WRONLY | os.O_APPEND | os.O_CREAT, "rb": os.O_RDONLY, "rb+": os.O_RDWR}[mode]
    flags |= _NOFOLLOW | _CLOEXEC
    if not _FD_OPS:
        _check_plain_path(target, root_path)
        fd = os.open(target, flags, 0o666)
    else:
        with _folder_fd(target.parent, root_path, create=mode == "ab") as dfd:
            _check_leaf(target.name, target, dfd)
            try:
                fd = os.open(target.name, flags, 0o666, dir_fd=dfd)
            except OSError as exc:
                if exc.errno == getattr(os, "ELOOP", -1):
                    raise _link_error(target) from None
                raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePath(f"{target} is not a plain file")
    return os.fdopen(fd, mode, buffering=buffering)


def replace(src: str | Path, dest: str | Path, root: str | Path | None = None) -> None:
    """Rename ``src`` over ``dest`` (same folder), refusing a link as either."""
    src, dest = _absolute(src), _absolute(dest)
    if src.parent != dest.parent:
        raise ValueError("replace() renames within one folder")
    root_path = _absolute(root) if root is not None else _root_for(dest)
    if not _FD_OPS:
        _check_plain_path(dest, root_path)
        if os.path.islink(src):
            raise _link_error(src)
        os.replace(src, dest)
        return
    with _folder_fd(dest.parent, root_path, create=False) as dfd:
        _check_leaf(src.name, src, dfd)
        _check_leaf(dest.name, dest, dfd)
        os.replace(src.name, dest.name, src_dir_fd=dfd, dst_dir_fd=dfd)


def remove(target: str | Path) -> None:
    """Remove a file name (a link is removed, never followed); missing is fine."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_absolute(target))


@contextlib.contextmanager
def file_lock(target: str | Path, timeout: float = 600.0, root: str | Path | None = None) -> Iterator[None]:
    """An exclusive lock on ``target`` (created if missing, never through a link), held for the block."""
    try:
        import fcntl
    except ImportError:  # Windows: filelock's msvcrt lock (no symbolic links planted there without admin rights)
        from filelock import FileLock

        with FileLock(str(target), timeout=timeout):
            yield
        return
    with open_file(target, "ab", root) as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{target} is locked by another radfeat process") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _folder_or_missing(name: str, target: Path, fd: int) -> bool:
    """True when ``name`` is a folder in ``fd``, False when missing; a link or a file there is refused."""
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode):
        raise _link_error(target)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePath(f"{target} exists and is not a folder")
    return True


@contextlib.contextmanager
def staged_folder(target: str | Path, root: str | Path | None = None) -> Iterator[Path]:
    """A fresh hidden folder beside ``target`` (fill it with the writers above); it replaces ``target`` whole.

    On success the previous ``target`` (if any) is renamed aside, the staged folder renamed in, and the old one
    removed last; on failure the staged folder is removed and ``target`` is untouched.  A link as ``target``
    or anywhere above it (below the root) is refused; renames and removal never follow links.
    """
    import shutil

    target = _absolute(target)
    root_path = _absolute(root) if root is not None else _root_for(target)
    token = secrets.token_hex(6)
    stage, old = f".{target.name[:120]}.{token}.tmp", f".{target.name[:120]}.{token}.old"
    if not _FD_OPS:
        _check_plain_path(target / "x", root_path)
        (target.parent / stage).mkdir()
        try:
            yield target.parent / stage
            if os.path.lexists(target):
                os.replace(target, target.parent / old)
            os.replace(target.parent / stage, target)
            shutil.rmtree(target.parent / old, ignore_errors=True)
        finally:
            shutil.rmtree(target.parent / stage, ignore_errors=True)
        return
    with _folder_fd(target.parent, root_path) as dfd:
        _folder_or_missing(target.name, target, dfd)
        os.mkdir(stage, 0o777, dir_fd=dfd)  # fails if the name exists: never someone else's folder
        try:
            yield target.parent / stage
            sfd = os.open(stage, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=dfd)
            try:
                os.fsync(sfd)
            finally:
                os.close(sfd)
            had_old = _folder_or_missing(target.name, target, dfd)
            if had_old:
                os.rename(target.name, old, src_dir_fd=dfd, dst_dir_fd=dfd)
            os.rename(stage, target.name, src_dir_fd=dfd, dst_dir_fd=dfd)
            with contextlib.suppress(OSError):
                os.fsync(dfd)
            if had_old:
                shutil.rmtree(old, dir_fd=dfd, ignore_errors=True)
        finally:
            if _folder_or_missing_quiet(stage, dfd):
                shutil.rmtree(stage, dir_fd=dfd, ignore_errors=True)


def _folder_or_missing_quiet(name: str, fd: int) -> bool:
    with contextlib.suppress(OSError):
        return stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
    return False
