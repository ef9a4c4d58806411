"""The end of a run: the finished rows become the table (or the master table), and the provenance beside it.

Shared by the local engine (:mod:`radfeat.pipeline.run`) and the Ray engine
(:mod:`radfeat.pipeline.ray_engine`), so both write the same table, byte for byte, and the same record.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import onnxruntime
import pyarrow as pa
from radfeat import __version__
from radfeat.errors import RadfeatError
from radfeat.options import ExtractOptions, master_date_column, master_patient_column
from radfeat.output.columns import is_text_column, sidecar
from radfeat.output.dates import load as load_dates
from radfeat.output.formats import publish
from radfeat.output.master import build_master
from radfeat.pipeline.names import shown

if TYPE_CHECKING:
    from radfeat.extractors.base import Extractor
    from radfeat.pipeline.headers import HeaderPass
    from radfeat.pipeline.progress import Summary


def publish_table(opts: ExtractOptions, ex: Extractor, src: Path, columns: list[str], output: Path,
                  summary: Summary, headers: HeaderPass, log: Callable[[str], None]) -> None:
    """The finished rows ``src`` (the partial CSV) become the table in its format (or the master table),
    atomically."""
    if opts.master_table is None:
        publish(src, output, opts.format, [c for c in columns if is_text_column(c)],
                pa.float64() if ex.float64 else None)
        return
    mt = opts.master_table
    if not mt.dates_from_dicom:
        with contextlib.suppress(ValueError):
            log(f"Dates CSV read as {load_dates(Path(mt.dates_csv).expanduser()).describe()}")
    target = output if opts.format == "csv" else output.with_name(output.name + ".master.tmp")
    listing = sidecar(output, ".unmatched.csv")
    try:
        mreport = build_master(src, target, mt, opts.depth, listing_path=listing, headers=headers)
    except ValueError as exc:  # the dates CSV changed or vanished since the run was checked
        raise RadfeatError(f"Master table: {exc}; the extracted rows are kept in {shown(src.name)}: "
                           "fix the dates CSV and run the same command") from None
    patient = master_patient_column(mt)
    numeric_ids = mt.patient_id_int and not mreport.ids_without_digits
    publish(target, output, opts.format, [master_date_column(mt)] + ([] if numeric_ids else [patient]),
            infer=[patient] if numeric_ids else [])
    if target != output:
        target.unlink(missing_ok=True)
    summary.master_table = mreport.to_json()
    summary.master = mreport.brief(listing)
    log("Master table: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in mreport.to_json().items()))


def provenance(opts: ExtractOptions, ex: Extractor, summary: Summary, threads: int) -> dict[str, Any]:
    """Settings, versions and counts recorded beside every table."""
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
                   "resumed": summary.resumed, "skipped_files": summary.skipped_files, "ignored": summary.ignored,
                   "changed_since_resume": summary.changed, "vanished_since_resume": summary.vanished,
                   "unmatched": None if summary.master_table is None else {
                       k: summary.master_table[k] for k in ("images_without_date", "dates_without_image")}},
        "master_table": summary.master_table,
        "seconds": round(summary.seconds, 3),
        "images_per_s": round(summary.images_per_s, 3),
    }
