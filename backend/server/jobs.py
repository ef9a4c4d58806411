"""Extraction jobs: long work runs in a background thread, never inside a request.

* :meth:`JobManager.start` validates nothing itself (the RPC layer already did),
  refuses a second job for the same weight set (or the same output file) while one
  is queued or running, and returns at once with the job.
* The worker calls :func:`radfeat.pipeline.run.extract` with a ``progress`` callback
  (after every batch), a ``log`` callback and a :class:`threading.Event` for cancel;
  the engine stops after the current batch and leaves a resumable partial result.
* A finished, failed or cancelled job keeps its summary, its error list and its last
  log lines until it falls out of the history (the last :data:`KEEP_JOBS` jobs).

How progress reaches the page: **polling** ``job_status`` (about twice a second),
not Server-Sent Events.  Reasons: (1) ``EventSource`` cannot send the
``X-Radfeat-Token`` header, so SSE would need the token in a URL, where it leaks
into logs and history; (2) polling is the same JSON-RPC call for the page, the
pywebview window (whose embedded engines differ per OS) and any script, with no
long-lived connection tying up a server thread or surviving a window reload;
(3) a status snapshot is a few hundred bytes built from memory under a lock, so
2 Hz costs nothing, while images finish far faster than a human can read; (4) a
reload or a second window just polls the same job id.  Nothing busy-waits: the
worker thread blocks in the engine, requests only read a snapshot.
"""

from __future__ import annotations

import collections
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from radfeat.errors import Busy, Cancelled, NotFound
from radfeat.pipeline.progress import Progress
from radfeat.pipeline.run import extract
from radfeat.server.partial_runs import resumable

log = logging.getLogger("radfeat.server")

ACTIVE = ("queued", "running")
KEEP_JOBS = 50
LOG_KEEP = 500
LOG_SHOWN = 50

ExtractFn = Callable[..., Any]


class JobBusy(Busy, RuntimeError):
    """A job is already queued or running for the same weight set or output file."""

    def __init__(self, job: Job, reason: str):
        self.job = job
        super().__init__(reason)

    def rpc_data(self) -> dict[str, Any]:
        return {"job_id": self.job.id}


class JobNotFound(NotFound, KeyError):
    def __init__(self, job_id: str):
        self.job_id = job_id
        super().__init__(job_id)

    def __str__(self) -> str:
        return f"No such job: {self.job_id}"

    def rpc_data(self) -> dict[str, Any]:
        return {"job_id": self.job_id}


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _summary_dict(summary: Any) -> dict[str, Any] | None:
    if summary is None:
        return None
    if isinstance(summary, dict):
        return dict(summary)
    to_dict = getattr(summary, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return {"result": str(summary)}


@dataclass
class Job:
    """One extraction run and everything the page may ask about it."""

    id: str
    options: Any
    weights: str
    output: str
    kind: str = "extract"  # or "download" (weights fetched from the page)
    state: str = "queued"
    progress: Progress = field(default_factory=lambda: Progress("queued"))  # the engine's latest report
    summary: dict[str, Any] | None = None
    error: str | None = None
    problems: list[dict[str, str]] | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    run: ExtractFn | None = None  # replaces the manager's extract function for this job (downloads)
    _log: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LOG_KEEP))
    _log_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    # -- callbacks from the worker thread ---------------------------------
    def add_log(self, line: Any) -> None:
        text = str(line).rstrip("\n")[:2000]
        with self._lock:
            for part in text.splitlines() or [""]:
                self._log.append(part)
                self._log_count += 1

    def on_progress(self, progress: Progress | dict[str, Any]) -> None:
        """The engine's report (a :class:`Progress`; a job body may give a dict of some of its fields)."""
        with self._lock:
            if self.state == "queued":
                self.state = "running"
            self.progress = Progress.of(progress, self.progress)

    # -- view --------------------------------------------------------------
    def _options_dict(self) -> dict[str, Any] | None:
        to_dict = getattr(self.options, "to_dict", None)
        return to_dict() if callable(to_dict) else None

    def snapshot(self, log_lines: int = LOG_SHOWN) -> dict[str, Any]:
        with self._lock:
            lines = list(self._log)[-log_lines:] if log_lines > 0 else []
            now = self.finished or time.time()
            return {
                "job_id": self.id,
                "kind": self.kind,
                "state": self.state,
                **self.progress.view(),
                "log": lines,
                "log_count": self._log_count,
                "summary": self.summary,
                "error": self.error,
                "problems": self.problems,
                "output": self.output,
                "weights": self.weights,
                "options": self._options_dict(),
                "cancel_requested": self.cancel.is_set(),
                "created": self.created,
                "started": self.started,
                "finished": self.finished,
                "elapsed_s": None if self.started is None else round(now - self.started, 3),
                **self._resume_state(),
            }

    def _resume_state(self) -> dict[str, bool]:
        """A stopped extraction whose finished rows are kept (``<output>.partial``, or the Ray engine's
        ``<output>.ray-shards/``) can be resumed."""
        stopped = self.kind == "extract" and self.state in ("cancelled", "failed")
        kept = stopped and resumable(Path(self.output))
        return {"interrupted": bool(kept), "resumable": bool(kept)}


def _final_progress(last: Progress, state: str, summary: dict[str, Any] | None) -> Progress:
    """The last report, closed with the run's summary (its errors, failures and speed)."""
    final = replace(last, stage=state)
    if summary is None:
        return final
    errs = summary.get("errors")
    final.errors = errs if isinstance(errs, list) else final.errors
    final.failed = int(summary.get("failed", final.failed) or 0)
    if state == "done":
        final.eta_s = 0.0
        final.done = final.total or final.done
        if summary.get("images_per_s") is not None:
            final.images_per_s = float(summary["images_per_s"])
    return final


def _default_extract(options: Any, **kwargs: Any) -> Any:
    return extract(options, **kwargs)


class JobManager:
    """Starts, tracks and cancels extraction jobs; thread-safe."""

    def __init__(self, extract_fn: ExtractFn | None = None, keep: int = KEEP_JOBS):
        self._extract = extract_fn or _default_extract
        self._keep = keep
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._lock = threading.Lock()

    def start(self, options: Any, *, weights: str, output: str, kind: str = "extract",
              run: ExtractFn | None = None) -> Job:
        """Queue ``options`` for extraction in a new thread; :class:`JobBusy` if it would clash.

        ``run`` (with ``kind``) replaces the extract function for this one job: a weights download
        is a job like any other (progress, cancel) and clashes with runs of the same weights.
        """
        with self._lock:
            for other in self._jobs.values():
                if not other.active:
                    continue
                if other.weights == weights:
                    raise JobBusy(other, f"A job is already running with weights '{weights}' ({other.id}); "
                                         "wait for it or cancel it first")
                if other.output == output:
                    raise JobBusy(other, f"A job is already writing {output} ({other.id}); "
                                         "wait for it or cancel it first")
            job = Job(id=secrets.token_hex(6), options=options, weights=weights, output=output, kind=kind, run=run)
            # a type without weights (fractal) is known by its type's name: no "weights 'fractal'" in the log
            uses = weights != getattr(options, "type", None)
            what = f"with weights '{weights}'" if uses else f"({weights}, no model weights)"
            job.add_log(f"Queued {'extraction' if kind == 'extract' else kind} {what} to {output}")
            self._jobs[job.id] = job
            self._trim()
            job.thread = threading.Thread(target=self._run, args=(job,), name=f"radfeat-job-{job.id}", daemon=True)
            job.thread.start()
            return job

    def _trim(self) -> None:
        while len(self._jobs) > self._keep:
            oldest = next((jid for jid, j in self._jobs.items() if not j.active), None)
            if oldest is None:
                break
            del self._jobs[oldest]

    def _run(self, job: Job) -> None:
        with job._lock:
            job.started = time.time()
            if job.cancel.is_set():
                job.state, job.finished = "cancelled", time.time()
                job.progress = replace(job.progress, stage="cancelled")
                return
            job.state = "running"
            job.progress = replace(job.progress, stage="starting")
        job.add_log("Extraction started" if job.kind == "extract" else f"{job.kind.capitalize()} started")
        state, summary, error, problems = "failed", None, None, None
        try:
            result = (job.run or self._extract)(job.options, progress=job.on_progress, cancel=job.cancel, log=job.add_log)
            summary = _summary_dict(result)
            cancelled = bool(summary and summary.get("cancelled"))
            state = "cancelled" if cancelled else "done"
        except Exception as exc:  # the job fails; the server and the other jobs go on
            if isinstance(exc, Cancelled):
                state = "cancelled"
            else:
                raw = getattr(exc, "problems", None)
                if isinstance(raw, list):
                    problems = [{"field": _field(p, "field", ""), "message": _field(p, "message", str(p))}
                                for p in raw]
                error = str(exc) or type(exc).__name__
                if hasattr(exc, "exit_status"):  # a RunError: its one line says it all
                    log.warning("Extraction job %s failed: %s", job.id, error)
                else:
                    log.exception("Extraction job %s failed", job.id)
        with job._lock:
            job.state, job.finished = state, time.time()
            job.summary, job.error, job.problems = summary, error, problems
            job.progress = _final_progress(job.progress, state, summary)
        if state == "done" and job.kind != "extract":
            job.add_log(f"Finished: {job.output}")
        elif state == "done":
            job.add_log(f"Finished: {(summary or {}).get('ok', job.progress.done)} images, "
                        f"{job.progress.failed} failed -> {job.output}")
        elif state == "cancelled":
            job.add_log("Cancelled; the partial result is kept and the same options resume it" if job.kind == "extract"
                        else "Cancelled; what was received is kept and the next try continues from it")
        else:
            job.add_log(f"Failed: {error}")

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def cancel(self, job_id: str) -> bool:
        """Ask a job to stop after its current batch; ``False`` if it had already ended."""
        job = self.get(job_id)
        with job._lock:
            if job.state not in ACTIVE:
                return False
            already = job.cancel.is_set()
            job.cancel.set()
        if not already:
            job.add_log("Cancel requested; stopping after the current batch")
        return True

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def shutdown(self, timeout: float = 30.0) -> None:
        """Cancel every active job and wait (bounded) for the workers to stop."""
        jobs = self.jobs()
        for job in jobs:
            job.cancel.set()
        deadline = time.monotonic() + timeout
        for job in jobs:
            if job.thread is not None:
                job.thread.join(max(0.0, deadline - time.monotonic()))
