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
import platform
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from radfeat import __version__
from radfeat.extractors.base import Extractor, make_extractor
from radfeat.options import (
    ExtractOptions,
    OptionsError,
    Problem,
    check,
    master_date_column,
    master_patient_column,
    resolve_weights,
)
from radfeat.output.columns import level_columns, sidecar
from radfeat.output.formats import finalize_plain, publish, write_errors, write_json
from radfeat.output.partial import PartialTable
from radfeat.pipeline.discovery import ImageRef, discover
from radfeat.pipeline.images import ImageError

logger = logging.getLogger("radfeat")


@dataclass
class Progress:
    stage: str
    done: int = 0
    total: int = 0
    failed: int = 0
    images_per_s: float = 0.0
    eta_s: float | None = None
    message: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)  # every failure so far: {"path", "reason"}


@dataclass
class Summary:
    output: str
    errors_path: str
    provenance_path: str
    ok: int = 0
    failed: int = 0
    skipped: int = 0  # not a chosen --views view (listed in the errors file with the reason)
    resumed: int = 0
    total: int = 0
    cancelled: bool = False
    seconds: float = 0.0
    images_per_s: float = 0.0
    errors: list[dict[str, str]] = field(default_factory=list)
    master_table: dict[str, Any] | None = None
    master: dict[str, Any] | None = None  # master_table in words for the page (see MasterReport.brief)
    provider: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def extract(options: ExtractOptions | None = None, *, progress: Callable[[Progress], None] | None = None,
            cancel: threading.Event | None = None, log: Callable[[str], None] | None = None,
            **kwargs: Any) -> Summary:
    """Extract features for every image of ``options.input``; see :class:`ExtractOptions`.

    Raises :class:`OptionsError` (before any work) when options are invalid.
    Returns a :class:`Summary`; ``summary.cancelled`` is true when ``cancel`` was set.
    """
    opts = _options_from(options, kwargs)
    log = log or logger.info
    report = progress or (lambda p: None)
    cancel = cancel or threading.Event()
    check(opts)
    t_start = time.perf_counter()

    ws = resolve_weights(opts)
    root = Path(opts.input).expanduser().resolve()
    report(Progress("discovering", message=f"Looking for images in {root}"))
    found = discover(root, opts.depth, opts.select)
    for path, reason in found.problems:
        log(f"Folder problem: {path}: {reason}")
    if opts.select is None or not found.images:  # images at other depths are counted, never silently dropped
        from radfeat.pipeline.depths import no_images_message, report_other_depths

        depths = report_other_depths(root, opts.depth, log)
        if not found.images:
            raise OptionsError([Problem("input", no_images_message(root, opts.depth, depths))])
    output = opts.output_path()

    from radfeat.pipeline.headers import scan_headers
    from radfeat.weights.session import default_threads

    threads = opts.threads or default_threads()
    headers = scan_headers(found.images, opts, max(1, min(threads, 8)))
    ex = make_extractor(opts, ws, threads, log)
    report(Progress("preparing model", total=len(found.images), message=ex.describe()))
    ex.prepare()

    columns = level_columns(opts.depth) + ["filename"] + list(opts.dicom_tags or []) + ex.columns()
    fingerprint = {"input": str(root), "depth": opts.depth,
                   "select": sorted(opts.select) if opts.select else None, **ex.fingerprint(),
                   **_dicom_fingerprint(opts)}
    partial = PartialTable(output, columns, fingerprint, resume=opts.resume, log=log, options=opts.to_dict())
    todo = [ref for ref in headers.refs if ref.key not in partial.done]
    resumed = len(headers.refs) - len(todo)
    total = len(found.images)
    skipped = [(str(ref.path), reason) for ref, reason in headers.skipped]
    if skipped:
        log(f"{len(skipped)} image(s) skipped: not one of the chosen views ({', '.join(opts.views or [])})")
    errors: list[tuple[str, str]] = []
    error_dicts: list[dict[str, str]] = [{"path": p, "reason": r} for p, r in skipped]
    done = resumed + len(skipped)
    processed = 0
    t_loop = time.perf_counter()
    report(Progress("extracting", done=done, total=total, message=f"{len(todo)} image(s) to process"))
    log(f"{total} image(s) found, {resumed} already done; {ex.start_line()}")

    def fail(ref: ImageRef, reason: str) -> None:
        errors.append((str(ref.path), reason))
        error_dicts.append({"path": str(ref.path), "reason": reason})
        log(f"Skipped {ref.path}: {reason}")

    bs = ex.batch_size
    workers = max(1, min(threads, 8))
    window = bs * 2 + workers  # read-ahead bound: decoded inputs in memory at any time
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="radfeat-decode") as pool:
            pending: collections.deque[Future[_Loaded]] = collections.deque()
            source = iter(todo)

            def refill() -> None:
                while len(pending) < window:
                    ref = next(source, None)
                    if ref is None:
                        return
                    pending.append(pool.submit(_load, ref, ex.load))

            refill()
            while pending and not cancel.is_set():
                batch: list[_Loaded] = []
                while pending and len(batch) < bs:
                    item = pending.popleft().result()
                    refill()
                    if item.error is None:
                        batch.append(item)
                    else:
                        fail(item.ref, item.error)
                        done += 1
                if batch:
                    result = ex.run([b.x for b in batch], [b.ref for b in batch])
                    if result.values is not None:
                        partial.append_columns(result.refs, result.values)
                    elif result.blocks:
                        partial.append(result.refs, result.blocks)
                    for ref, reason in result.failed:
                        fail(ref, reason)
                    done += len(batch)
                processed = done - resumed
                elapsed = time.perf_counter() - t_loop
                rate = processed / elapsed if elapsed > 0 else 0.0
                eta = (total - done) / rate if rate > 0 else None
                report(Progress("extracting", done=done, total=total, failed=len(errors), images_per_s=rate,
                                eta_s=eta, errors=error_dicts))
            if cancel.is_set():
                for fut in pending:
                    fut.cancel()
    finally:
        partial.close()

    elapsed = time.perf_counter() - t_loop
    rate = processed / elapsed if elapsed > 0 and processed else 0.0
    errors_path = sidecar(output, ".errors.csv")
    prov_path = sidecar(output, ".json")
    summary = Summary(
        output=str(output), errors_path=str(errors_path), provenance_path=str(prov_path),
        ok=len(partial.done), failed=len(errors), skipped=len(skipped), resumed=resumed, total=total,
        cancelled=cancel.is_set(),
        images_per_s=rate, errors=error_dicts, provider=ex.provider,
    )
    write_errors(errors_path, skipped + errors)
    if summary.cancelled:
        summary.seconds = time.perf_counter() - t_start
        log(f"Cancelled: {partial.rows} row(s) kept in {partial.path}; run again with the same options to resume")
        report(Progress("cancelled", done=done, total=total, failed=len(errors)))
        return summary

    report(Progress("writing", done=done, total=total, failed=len(errors), message=f"Writing {output.name}"))
    if opts.master_table is not None:
        from radfeat.output.master import build_master

        mt = opts.master_table
        target = output if opts.format == "csv" else output.with_name(output.name + ".master.tmp")
        listing = sidecar(output, ".unmatched.csv")
        mreport = build_master(partial.path, target, mt, opts.depth, listing_path=listing, headers=headers)
        patient = master_patient_column(mt)
        numeric_ids = mt.patient_id_int and not mreport.ids_without_digits
        publish(target, output, opts.format, [master_date_column(mt)] + ([] if numeric_ids else [patient]),
                infer=[patient] if numeric_ids else [])
        if target != output:
            target.unlink(missing_ok=True)
        summary.master_table = mreport.to_json()
        summary.master = mreport.brief(listing)
        partial.discard()
        log("Master table: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in mreport.to_json().items()))
    else:
        import pyarrow as pa

        finalize_plain(partial, output, opts.format, pa.float64() if ex.float64 else None)
        partial.discard()

    ex.finish(summary)
    summary.seconds = time.perf_counter() - t_start
    write_json(prov_path, provenance(opts, ex, summary, threads))
    report(Progress("done", done=done, total=total, failed=len(errors), images_per_s=rate, eta_s=0.0,
                    message=f"Wrote {output}"))
    log(f"Wrote {output}: {partial.rows} row(s), {summary.failed} failed, {rate:.1f} images/s")
    return summary


def _dicom_fingerprint(opts: ExtractOptions) -> dict[str, Any]:
    """The DICOM options a partial result must share to be resumed (absent when unused)."""
    out: dict[str, Any] = {}
    if opts.dicom_voi_lut:
        out["dicom_voi_lut"] = True
    if opts.views is not None:
        out["views"] = sorted(v.upper() for v in opts.views)
    return out


def provenance(opts: ExtractOptions, ex: Extractor, summary: Summary, threads: int) -> dict[str, Any]:
    """Settings, versions and counts recorded beside every table."""
    import onnxruntime

    own = ex.provenance()
    return {
        "radfeat": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "type": opts.type,
        "weights": own.pop("weights", None),
        "export": own.pop("export", None),
        **own,
        "preprocess": opts.preprocess,
        "precision": opts.precision,
        "onnxruntime": {"version": onnxruntime.__version__, "provider": ex.provider, "threads": threads},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "options": opts.to_dict(),
        "counts": {"images": summary.total, "ok": summary.ok, "failed": summary.failed, "skipped": summary.skipped,
                   "resumed": summary.resumed,
                   "unmatched": None if summary.master_table is None else {
                       k: summary.master_table[k] for k in ("images_without_date", "dates_without_image")}},
        "master_table": summary.master_table,
        "seconds": round(summary.seconds, 3),
        "images_per_s": round(summary.images_per_s, 3),
    }
