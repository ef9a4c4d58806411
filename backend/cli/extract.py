"""``radfeat extract``: the arguments turned into :class:`~radfeat.options.ExtractOptions`, the run, its summary."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

from radfeat.cli import fail
from radfeat.cli.parser import lenient_int, split
from radfeat.errors import EXIT_INTERRUPTED
from radfeat.extractors import registry
from radfeat.options import ExtractOptions, MasterTableOptions, default_filename
from radfeat.pipeline.names import shown
from radfeat.pipeline.run import Progress, extract
from radfeat.weights.catalog import Catalog
from tqdm import tqdm

EXIT_TERMINATED = 143  # 128 + SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler's stop, a closing session), handled exactly like Ctrl-C."""


def _on_sigterm(_sig: int, _frame: object) -> None:
    raise Terminated


def _option_value(opt: registry.Option, text: str | None) -> Any:
    """A type option from its CLI text: the declared default when the flag is not given."""
    if text is None:
        return opt.default_value()
    if opt.kind == "int":
        return lenient_int(text)
    if opt.kind == "bool":
        return text.strip().lower() in ("1", "true", "yes", "on")
    if opt.kind == "multichoice" or isinstance(opt.default, list):
        return split(text)
    return text


def _infer_type(weights: str | None) -> str:
    """No --type: the type of the named weight set (the default type when none is named or it is unknown)."""
    if weights:
        try:
            kind = registry.kind_of(Catalog().get(weights).architecture)
        except KeyError:  # validation names the problem
            kind = None
        if kind is not None:
            return kind
    return registry.default_type()


def options_from_args(a: argparse.Namespace) -> ExtractOptions:
    fmt = a.format
    kind = a.type or _infer_type(a.weights)
    filename = a.filename or default_filename(kind, fmt)
    master = None
    if a.master_table:
        master = MasterTableOptions(dates_csv=a.dates or "", filename_column=a.filename_column or "",
                                    date_column=a.date_column or "", patient_level=a.patient_level,
                                    patient_id_int=a.patient_id_int, dates_from_dicom=a.dates_from_dicom,
                                    patient_from_dicom=a.patient_from_dicom)
    type_options = {opt.name: _option_value(opt, getattr(a, opt.name, None)) for opt, _ in registry.options()}
    return ExtractOptions(
        input=a.input, depth=a.depth, select=a.select, weights=a.weights,
        features=[f.strip() for f in a.features.split(",") if f.strip()], prefix=a.prefix, filename=filename,
        workspace=a.workspace, output=a.output, format=fmt, preprocess=a.preprocess, device=a.device,
        precision=a.precision, batch_size=a.batch_size, threads=a.threads, master_table=master,
        resume=not a.no_resume, max_pixels=a.max_pixels, type=kind, type_options=type_options,
        dicom_tags=None if a.dicom_tags is None else split(a.dicom_tags),
        views=None if a.views is None else split(a.views), dicom_voi_lut=a.dicom_voi_lut,
        head=None if not a.head else [str(Path(h).expanduser().resolve()) for h in a.head],
        engine=a.engine, ray_address=a.ray_address,
    )


def run(a: argparse.Namespace) -> int:
    """Extract with a progress bar; Ctrl-C or SIGTERM keeps the finished rows for a resume."""
    opts = options_from_args(a)
    bar: Any = None

    def on_progress(p: Progress) -> None:
        nonlocal bar
        if a.quiet or p.stage != "extracting":
            return
        if bar is None:
            bar = tqdm(total=p.total, initial=p.done, unit="img", dynamic_ncols=True, desc="extracting")
        bar.update(p.done - bar.n)
        bar.set_postfix(failed=p.failed, refresh=False)

    def log(msg: str) -> None:
        (tqdm.write if bar is not None else print)(msg, file=sys.stderr)

    previous = signal.signal(signal.SIGTERM, _on_sigterm)  # a stop request ends the run like Ctrl-C does
    try:
        summary = extract(opts, progress=on_progress, log=log)
    except KeyboardInterrupt as exc:
        out = opts.output_path()
        kept = f"{shown(out.name)}.ray-shards/" if opts.engine == "ray" else f"{shown(out.name)}.partial"
        what, code = ("terminated", EXIT_TERMINATED) if isinstance(exc, Terminated) else ("interrupted",
                                                                                            EXIT_INTERRUPTED)
        return fail(f"{what}; finished rows are kept in {kept} — run the same command to resume", code)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if bar is not None:
            bar.close()
    _print_summary(summary)
    return 0


def _print_summary(summary: Any) -> None:
    views = f", {summary.skipped} skipped by --views" if summary.skipped else ""
    print(f"{summary.ok} image(s) → {shown(summary.output)}  ({summary.failed} failed{views}, {summary.resumed} "
          f"resumed, {summary.skipped_files} item(s) skipped, {summary.images_per_s:.1f} images/s)")
    if summary.failed or summary.skipped:
        print(f"Problems listed in {shown(summary.errors_path)}")
    if summary.skipped_files:
        print(f"Skipped files and folders listed in {shown(summary.skipped_path)}")
    if summary.ignored:
        print(f"{summary.ignored} hidden or system file(s) ignored (.DS_Store, Thumbs.db, names starting with '.')")
    if summary.changed or summary.vanished:
        print(f"Since the interrupted run: {summary.changed} image(s) changed (done again), "
              f"{summary.vanished} no longer found (rows dropped)")
    if summary.master_table:
        m = summary.master_table
        print(f"Master table: {m['rows']} rows; {m['images_without_date']} image(s) without date, "
              f"{m['dates_without_image']} date(s) without image, {m['duplicate_filenames']} duplicate file name(s), "
              f"{m['unparseable_dates']} unparseable date(s)")
