"""The extraction job: discover → decode/preprocess (worker threads) → ONNX batches → table.

This is the one code path behind ``radfeat extract``, the backend's jobs and
``radfeat.extract(...)``, for every extraction type: what differs between types
(model, preprocessing, columns, provenance) comes from an
:class:`~radfeat.extractors.base.Extractor` chosen by ``options.type``.  Decoding runs
in a small thread pool (Pillow, NumPy and ONNX Runtime release the GIL) while the
main thread runs inference, with a bounded read-ahead window so memory stays flat
whatever the dataset size.
A bad image becomes a line in the errors file; Ctrl-C, ``kill -9`` or a cancel
leave the finished rows in ``<output>.partial``, and the same command resumes.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from radfeat.extractors.base import Extractor, make_extractor
from radfeat.options import (
    ExtractOptions,
    OptionsError,
    Problem,
    check,
    resolve_weights,
)
from radfeat.output.atomic import trust_root
from radfeat.output.columns import level_columns, sidecar
from radfeat.output.formats import write_errors, write_json, write_listing
from radfeat.output.partial import PartialTable
from radfeat.output.publish import provenance, publish_table
from radfeat.pipeline.depths import no_images_message, report_other_depths
from radfeat.pipeline.discovery import Discovery, ImageRef, discover
from radfeat.pipeline.guard import output_lock, writing
from radfeat.pipeline.headers import HeaderPass, scan_headers
from radfeat.pipeline.images import ImageError
from radfeat.pipeline.names import shown
from radfeat.pipeline.progress import SHOWN_SKIPPED, Progress, Summary
from radfeat.pipeline.testhook import pause_point
from radfeat.weights.session import default_threads

logger = logging.getLogger("radfeat")


class _Loaded:
    __slots__ = ("ref", "x", "error")

    def __init__(self, ref: ImageRef, x: np.ndarray | None, error: str | None) -> None:
        self.ref, self.x, self.error = ref, x, error


def _load(ref: ImageRef, load: Callable[[ImageRef], Any]) -> _Loaded:
    try:
        return _Loaded(ref, load(ref), None)
    except ImageError as exc:
        return _Loaded(ref, None, str(exc))
    except Exception as exc:  # one bad case gives a log line, never a crashed run
        return _Loaded(ref, None, f"unexpected error: {type(exc).__name__}: {exc}")


def _options_from(options: ExtractOptions | None, kwargs: dict[str, Any]) -> ExtractOptions:
    if options is None:
        return ExtractOptions.from_dict(kwargs)
    return replace(options, **kwargs) if kwargs else options


@dataclass
class _Run:
    """One extraction while it runs: its counts, the one list of problems, timing and reporting."""

    report: Callable[[Progress], None]
    log: Callable[[str], None]
    total: int
    resumed: int
    errors: list[dict[str, str]]  # {"path", "reason"}: views skipped first, then every failure as it happens
    n_skipped: int = 0
    done: int = 0
    t_loop: float = field(default_factory=time.perf_counter)

    @property
    def failed(self) -> int:
        return len(self.errors) - self.n_skipped

    @property
    def processed(self) -> int:
        return self.done - self.resumed

    def fail(self, ref: ImageRef, reason: str) -> None:
        self.errors.append({"path": shown(ref.path), "reason": reason})
        self.log(f"Skipped {shown(ref.path)}: {reason}")

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.t_loop
        return self.processed / elapsed if elapsed > 0 and self.processed else 0.0

    def progress(self, stage: str, **extra: Any) -> None:
        self.report(Progress(stage, done=self.done, total=self.total, failed=self.failed, **extra))

    def batch_done(self) -> None:
        rate = self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else None
        self.progress("extracting", images_per_s=rate, eta_s=eta, errors=self.errors)


def extract(options: ExtractOptions | None = None, *, progress: Callable[[Progress], None] | None = None,
            cancel: threading.Event | None = None, log: Callable[[str], None] | None = None,
            **kwargs: Any) -> Summary:
    """Extract features for every image of ``options.input``; see :class:`ExtractOptions`.

    Raises :class:`OptionsError` (before any work) when options are invalid, :class:`OutputBusy` at once when
    another run writes the same output, :class:`OutputUnwritable` when the output cannot be written (finished
    rows are kept and the same call resumes).
    Returns a :class:`Summary`; ``summary.cancelled`` is true when ``cancel`` was set.
    """
    opts = _options_from(options, kwargs)
    log = log or logger.info
    report = progress or (lambda p: None)
    cancel = cancel or threading.Event()
    check(opts)
    trust_root(Path(opts.workspace).expanduser().resolve())  # writes below it never follow a link
    if opts.engine == "ray":
        from radfeat.pipeline.ray_engine import extract_ray

        with output_lock(opts.output_path()):
            return extract_ray(opts, report, cancel, log)
    found = _discover(opts, Path(opts.input).expanduser().resolve(), report, log)  # refused here: nothing written
    with output_lock(opts.output_path()):  # one run per output, across processes, for the whole run
        return _extract_locked(opts, found, report, cancel, log)


def _kept(partial: PartialTable) -> str:
    return (f"{partial.rows} finished row(s) are kept in {shown(partial.path.name)}: fix the cause "
            "(free space, permissions) and run the same command to resume")


def _extract_locked(opts: ExtractOptions, found: Discovery, report: Callable[[Progress], None],
                    cancel: threading.Event, log: Callable[[str], None]) -> Summary:
    t_start = time.perf_counter()
    setup = prepare_run(opts, report, log, found=found)
    ex, headers, threads, output = setup.ex, setup.headers, setup.threads, setup.output
    list_skipped(found, output, log)
    with writing(output):
        partial = PartialTable(output, setup.columns, setup.fingerprint, resume=opts.resume, log=log,
                               options=opts.to_dict())
    try:
        with writing(partial.path, _kept(partial)):
            changed, vanished = partial.reconcile(headers.refs)  # images deleted or replaced since their rows
        todo = [ref for ref in headers.refs if ref.key not in partial.done]  # refs carry their DICOM tag cells
        run = _start(opts, found, headers, todo, report, log)
        log(f"{run.total} image(s) found, {run.resumed} already done; {ex.start_line()}")
        _extract_all(ex, todo, run, partial, cancel, threads)
    finally:
        with writing(partial.path, _kept(partial)):
            partial.close()

    summary = _summary(output, ex, run, partial, cancelled=cancel.is_set())
    account_for_inputs(summary, found, changed, vanished)
    with writing(summary.errors_path):
        write_errors(Path(summary.errors_path), [(e["path"], e["reason"]) for e in run.errors])
    if summary.cancelled:
        summary.seconds = time.perf_counter() - t_start
        log(f"Cancelled: {partial.rows} row(s) kept in {shown(partial.path)}; "
            "run again with the same options to resume")
        run.progress("cancelled")
        return summary
    run.progress("writing", message=f"Writing {shown(output.name)}")
    with writing(output, _kept(partial)):
        partial.sort()  # a resumed table is the uninterrupted one, row for row
        publish_table(opts, ex, partial.path, partial.columns, output, summary, headers, log)
    partial.discard()
    ex.finish(summary)
    summary.seconds = time.perf_counter() - t_start
    with writing(summary.provenance_path):
        write_json(Path(summary.provenance_path), provenance(opts, ex, summary, threads))
    run.progress("done", images_per_s=summary.images_per_s, eta_s=0.0, message=f"Wrote {shown(output)}")
    log(f"Wrote {shown(output)}: {partial.rows} row(s), {summary.failed} failed, "
        f"{summary.images_per_s:.1f} images/s")
    return summary


def account_for_inputs(summary: Summary, found: Discovery, changed: int, vanished: int) -> None:
    """What the summary says beyond the rows: items not used, clutter ignored, what resume found changed."""
    summary.skipped_files = len(found.skipped)
    summary.skipped_path = str(sidecar(Path(summary.output), ".skipped.csv"))
    summary.skipped_items = [{"path": p, "reason": r} for p, r in found.skipped[:SHOWN_SKIPPED]]
    summary.ignored, summary.changed, summary.vanished = found.ignored, changed, vanished


@dataclass
class RunSetup:
    """What both engines (local, Ray) settle before the first image."""

    found: Discovery
    headers: HeaderPass  # ``headers.refs``: the images to process, with their DICOM tag cells
    output: Path
    threads: int
    ex: Extractor
    columns: list[str]
    fingerprint: dict[str, Any]  # what a partial result must share to be resumed


def prepare_run(opts: ExtractOptions, report: Callable[[Progress], None], log: Callable[[str], None], *,
                on_driver: bool = False, found: Discovery | None = None) -> RunSetup:
    """Discovery, DICOM headers, the extractor (weights, export, session), columns and fingerprint.

    ``on_driver``: the Ray engine's driver prepares the extractor on its CPU with one thread (the workers
    open their own sessions on their devices); the extractor's ``opts`` are then the run's own again.
    """
    wset = resolve_weights(opts)
    root = Path(opts.input).expanduser().resolve()
    found = found if found is not None else _discover(opts, root, report, log)
    threads = opts.threads or default_threads()
    headers = scan_headers(found.images, opts, max(1, min(threads, 8)))
    ex = make_extractor(replace(opts, device="cpu") if on_driver else opts, wset, 1 if on_driver else threads, log)
    report(Progress("preparing model", total=len(found.images), message=ex.describe()))
    ex.prepare()
    ex.opts = opts
    columns = level_columns(opts.depth) + ["filename"] + list(opts.dicom_tags or []) + ex.columns()
    fingerprint = {"input": str(root), "depth": opts.depth, "select": sorted(opts.select) if opts.select else None,
                   **ex.fingerprint(), **_dicom_fingerprint(opts)}
    return RunSetup(found, headers, opts.output_path(), threads, ex, columns, fingerprint)


def _discover(opts: ExtractOptions, root: Path, report: Callable[[Progress], None],
              log: Callable[[str], None]) -> Discovery:
    """The images at the chosen depth; everything else is counted (and listed by :func:`list_skipped`)."""
    report(Progress("discovering", message=f"Looking for images in {shown(root)}"))
    found = discover(root, opts.depth, opts.select)
    if opts.select is None or not found.images:
        depths = report_other_depths(root, opts.depth, log)
        if not found.images:
            raise OptionsError([Problem("input", no_images_message(shown(root), opts.depth, depths))])
    return found


def list_skipped(found: Discovery, output: Path, log: Callable[[str], None]) -> None:
    """``…skipped.csv``: every file and folder not used, with the reason; hidden clutter only counted."""
    skipped_path = sidecar(output, ".skipped.csv")
    with writing(skipped_path):
        write_listing(skipped_path, ["path", "reason"], found.skipped)
    if found.skipped:
        log(f"Skipped {len(found.skipped)} item(s), listed in {shown(skipped_path.name)}: {found.overview()}")
    if found.ignored:
        log(f"Ignored {found.ignored} hidden or system file(s) (.DS_Store, Thumbs.db, names starting with '.')")


def _start(opts: ExtractOptions, found: Discovery, headers: HeaderPass, todo: list[ImageRef],
           report: Callable[[Progress], None], log: Callable[[str], None]) -> _Run:
    skipped = headers.skipped
    if skipped:
        log(f"{len(skipped)} image(s) skipped: not one of the chosen views ({', '.join(opts.views or [])})")
    resumed = len(headers.refs) - len(todo)
    run = _Run(report, log, total=len(found.images), resumed=resumed, n_skipped=len(skipped),
               errors=[{"path": shown(ref.path), "reason": reason} for ref, reason in skipped])
    run.done = resumed + len(skipped)
    run.progress("extracting", message=f"{len(todo)} image(s) to process")
    return run


def _read_ahead(pool: ThreadPoolExecutor, todo: list[ImageRef], load: Callable[[ImageRef], Any],
                window: int) -> Iterator[_Loaded]:
    """Decoded images in order, with ``window`` of them submitted ahead (memory stays flat)."""
    pending: collections.deque[Future[_Loaded]] = collections.deque()
    source = iter(todo)

    def refill() -> None:
        while len(pending) < window and (ref := next(source, None)) is not None:
            pending.append(pool.submit(_load, ref, load))

    try:
        refill()
        while pending:
            item = pending.popleft().result()
            refill()
            yield item
    finally:
        for fut in pending:  # closed early (cancel): the rest is never decoded
            fut.cancel()


def _next_batch(loaded: Iterator[_Loaded], size: int, run: _Run) -> tuple[list[_Loaded], bool]:
    """Up to ``size`` decoded images (failures are recorded on the way); False once the source is exhausted."""
    batch: list[_Loaded] = []
    for item in loaded:
        if item.error is None:
            batch.append(item)
        else:
            run.fail(item.ref, item.error)
            run.done += 1
        if len(batch) == size:
            return batch, True
    return batch, False


def _extract_all(ex: Extractor, todo: list[ImageRef], run: _Run, partial: PartialTable, cancel: threading.Event,
                 threads: int) -> None:
    """Decode in worker threads, run the extractor batch by batch in this thread, append the rows.

    A cancel stops after the current batch."""
    workers = max(1, min(threads, 8))
    window = ex.batch_size * 2 + workers  # read-ahead bound: decoded inputs in memory at any time
    pause, batches = pause_point(), 0  # the test pause point (inert outside tests)
    with ThreadPoolExecutor(workers, thread_name_prefix="radfeat-decode") as pool:
        loaded = _read_ahead(pool, todo, ex.load, window)
        more = bool(todo)
        while more and not cancel.is_set():
            batch, more = _next_batch(loaded, ex.batch_size, run)
            if batch:
                with writing(partial.path, _kept(partial)):  # rows, and saliency maps written by run()
                    result = ex.run([b.x for b in batch], [b.ref for b in batch])
                    if result.values is not None:
                        partial.append_columns(result.refs, result.values)
                    elif result.blocks:
                        partial.append(result.refs, result.blocks)
                for ref, reason in result.failed:
                    run.fail(ref, reason)
                run.done += len(batch)
                batches += 1
                pause(batches)
            run.batch_done()
        loaded.close()


def _summary(output: Path, ex: Extractor, run: _Run, partial: PartialTable, *, cancelled: bool) -> Summary:
    return Summary(
        output=str(output), errors_path=str(sidecar(output, ".errors.csv")),
        provenance_path=str(sidecar(output, ".json")), ok=len(partial.done), failed=run.failed,
        skipped=run.n_skipped, resumed=run.resumed, total=run.total, cancelled=cancelled,
        images_per_s=run.rate(), errors=run.errors, provider=ex.provider,
    )


def _dicom_fingerprint(opts: ExtractOptions) -> dict[str, Any]:
    """The DICOM options a partial result must share to be resumed (absent when unused)."""
    out: dict[str, Any] = {}
    if opts.dicom_voi_lut:
        out["dicom_voi_lut"] = True
    if opts.views is not None:
        out["views"] = sorted(v.upper() for v in opts.views)
    return out
