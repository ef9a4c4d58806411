"""One error hierarchy for the CLI, the JSON-RPC layer and the jobs.

Every failure a user can act on is a :class:`RadfeatError`: its message is a sentence shown as it
is, and the class says how each front end reports it — ``exit_status`` for ``radfeat`` commands,
``rpc_code`` (plus :meth:`RadfeatError.rpc_data`) for JSON-RPC error objects.  Anything else that
escapes is a bug: the CLI shows its traceback, the RPC layer answers "Internal error" and logs it.

==========================  ======  ========  ==========================================================
class                       exit    RPC code  when
==========================  ======  ========  ==========================================================
:class:`RadfeatError`       1       -32005    an operation failed (base class; download, export, device …)
:class:`InvalidInput`       2       -32602    an argument is refused before any work (ONNX registration …)
:class:`OptionsError`       2       -32000    extraction options refused; ``data.problems`` lists them
:class:`UnknownWeights`     2       -32002    a weights name that is not in the catalog
:class:`NotFound`           2       -32002    a file, folder or job that does not exist
:class:`AccessDenied`       2       -32001    a path outside the workspace and the chosen folders
:class:`Busy`               1       -32003    a job already runs for these weights or this output
:class:`Cancelled`          130     -32006    the user stopped the work (Ctrl-C, cancel); it can resume
==========================  ======  ========  ==========================================================

The concrete classes live beside the code that raises them and keep their historical names
(``CheckpointError``, ``DownloadError``, ``ExportError``, ``DeviceError``, ``OnnxModelError``,
``ImageError``, ``JobBusy``, ``JobNotFound``, ``PathDenied``); they subclass these, and the
built-in exception they always were (``ValueError``, ``KeyError`` …), so old ``except`` clauses hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# JSON-RPC 2.0 error codes: the standard ones, then radfeat's (the server range -32000..-32099).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
INVALID_OPTIONS = -32000
ACCESS_DENIED = -32001
NOT_FOUND = -32002
BUSY = -32003
CANNOT_READ = -32004
FAILED = -32005
CANCELLED = -32006

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


class RadfeatError(Exception):
    """A failure with a readable message; the class decides the exit status and the RPC code."""

    exit_status: int = EXIT_FAILED
    rpc_code: int = FAILED

    def rpc_message(self) -> str:
        """The message of the JSON-RPC error object."""
        return str(self)

    def rpc_data(self) -> dict[str, Any] | None:
        """Structured details for the JSON-RPC error object (``None``: no ``data`` member)."""
        return None


class InvalidInput(RadfeatError):
    """An argument is refused before any work starts."""

    exit_status = EXIT_INVALID
    rpc_code = INVALID_PARAMS


class NotFound(RadfeatError):
    """A file, folder, weight set or job that does not exist."""

    exit_status = EXIT_INVALID
    rpc_code = NOT_FOUND


class AccessDenied(RadfeatError):
    """A path the caller may not read or write."""

    exit_status = EXIT_INVALID
    rpc_code = ACCESS_DENIED


class Busy(RadfeatError):
    """The same work is already running."""

    rpc_code = BUSY


class Cancelled(RadfeatError):
    """The user stopped the work; finished rows are kept and the same command resumes."""

    exit_status = EXIT_INTERRUPTED
    rpc_code = CANCELLED


class ImageError(RadfeatError, ValueError):
    """An image that cannot be used; the message is the reason shown to the user (the run goes on).

    Importable from :mod:`radfeat.pipeline.images` too (the readers raise it)."""


def exit_status(exc: BaseException) -> int:
    """The CLI's exit status for ``exc`` (Ctrl-C counts as a cancel)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return exc.exit_status if isinstance(exc, RadfeatError) else EXIT_FAILED


@dataclass(frozen=True)
class Problem:
    """One refused option: the field it concerns (the RPC/page key) and the sentence that says why."""

    field: str
    message: str


class OptionsError(RadfeatError, ValueError):
    """Invalid options, refused before any work starts; ``problems`` lists every one."""

    exit_status = EXIT_INVALID
    rpc_code = INVALID_OPTIONS

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))

    def rpc_message(self) -> str:
        return f"Invalid options: {self}"

    def rpc_data(self) -> dict[str, Any]:
        return {"problems": problem_dicts(self.problems)}


def problem_dicts(problems: list[Problem]) -> list[dict[str, str]]:
    return [{"field": p.field, "message": p.message} for p in problems]
