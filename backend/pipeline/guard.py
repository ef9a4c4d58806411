"""What keeps a run honest about its output: one run per output file, and one-line write failures.

* :func:`output_lock` — an OS-level lock (``filelock``: ``flock`` on POSIX, ``LockFileEx`` on Windows)
  on ``.<table name>.lock`` beside the table, taken without waiting before anything is written and
  held until the run ends, so a second run on the same output — another CLI, the backend, a notebook —
  is refused at once (:class:`OutputBusy`) instead of interleaving rows.  The OS drops the lock when a
  process dies, even by ``kill -9``; the empty lock file may stay and means nothing by itself.
* :func:`writing` — turns an ``OSError`` while writing the output (disk full, read-only folder, quota,
  permissions) into :class:`OutputUnwritable`, one line naming the file and the cause.  Finished rows
  stay in the partial table and the same command resumes once the cause is fixed.

Both are :class:`radfeat.errors.RadfeatError` s: the CLI prints their one line with their exit status,
the JSON-RPC layer answers with their code.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from radfeat.errors import Busy, RadfeatError
from radfeat.pipeline.names import shown

EXIT_BUSY = 75  # EX_TEMPFAIL: try again later
EXIT_UNWRITABLE = 74  # EX_IOERR

RunError = RadfeatError  # a run that cannot go on: one line, its exit status, its RPC code


class OutputBusy(Busy):
    """Another run (any process) holds the output's lock."""

    exit_status = EXIT_BUSY

    def __init__(self, output: Path) -> None:
        self.output = output
        super().__init__(f"Another radfeat run is already writing {shown(output)}; wait for it to finish "
                         "(or stop it), then run again — its finished rows will be resumed")

    def rpc_data(self) -> dict[str, Any]:
        return {"job_id": None, "output": shown(self.output)}


class OutputUnwritable(RadfeatError):
    """The output (or its partial/sidecar files) cannot be written."""

    exit_status = EXIT_UNWRITABLE

    def __init__(self, path: Path | str, exc: OSError, kept: str = "") -> None:
        self.path, self.errno = path, exc.errno
        cause = _CAUSES.get(exc.errno or 0) or exc.strerror or str(exc)
        super().__init__(f"Cannot write {shown(path)}: {cause}" + (f"; {kept}" if kept else ""))


_CAUSES = {
    errno.ENOSPC: "no space left on the disk",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EACCES: "permission denied (the folder is not writable)",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "file too large for this file system",
}


def lock_path(output: Path) -> Path:
    return output.with_name(f".{output.name}.lock")


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Hold the output's lock for the block; :class:`OutputBusy` at once if another run holds it."""
    path = lock_path(output)
    with writing(output.parent):
        output.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, blocking=False, thread_local=False)
    try:
        lock.acquire()
    except Timeout:
        raise OutputBusy(output) from None
    except OSError as exc:
        raise OutputUnwritable(output.parent, exc) from None
    try:
        yield
    finally:
        lock.release()


def is_held(output: Path) -> bool:
    """Whether some run holds the output's lock right now (probes without keeping it, creates nothing)."""
    if not lock_path(output).is_file():  # a run creates the lock file before anything else
        return False
    try:
        with output_lock(output):
            return False
    except OutputBusy:
        return True
    except OutputUnwritable:
        return False  # the run itself will say why it cannot write


@contextlib.contextmanager
def writing(path: Path | str, kept: str = "") -> Iterator[None]:
    """Report an ``OSError`` raised in the block as :class:`OutputUnwritable` for ``path``."""
    try:
        yield
    except OutputUnwritable:
        raise
    except OSError as exc:
        raise OutputUnwritable(path, exc, kept) from None
