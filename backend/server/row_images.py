"""Which image file a row of a result table came from.

A plain table names it: ``level_1 … level_N`` and ``filename`` below the run's input folder
(recorded in the provenance file beside the table).  A master table keeps only the patient
level and the date; its image is found back through the dates CSV (file names with that date)
and the images of that patient, taking the same occurrence order the table was written in.
The answer is always an image file below the recorded input folder, never anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from radfeat.errors import ImageError
from radfeat.options import MasterTableOptions, master_date_column, master_patient_column
from radfeat.output.dates import read_dates
from radfeat.output.master import patient_id_int
from radfeat.output.tabular import iter_columns
from radfeat.pipeline.dicom import DATE_TAGS, PATIENT_TAG, header_datetime, is_dicom, read_tags
from radfeat.pipeline.discovery import discover, is_image_file


class RowImageError(LookupError):
    """The row's image cannot be found (no provenance, moved files, ambiguous master row)."""


def _row_values(table: Path, columns: Sequence[str], row: int) -> list[list[str]]:
    """Values of ``columns`` for rows ``0 … row`` (text), read in chunks; the last one is ``row``'s."""
    rows: list[list[str]] = []
    for batch in iter_columns(table, columns, numeric=False):
        cols = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        rows.extend([str(v) for v in r] for r in zip(*cols, strict=True))
        if len(rows) > row:
            return rows[: row + 1]
    raise RowImageError(f"Row {row} is not in {table.name}")


def _inside(image: Path, root: Path) -> Path:
    resolved = image.resolve()
    if not resolved.is_relative_to(root.resolve()) or not is_image_file(resolved):
        raise RowImageError(f"The image of this row is not in {root} any more: {image}")
    return resolved


def image_of_row(table: Path, columns: Sequence[str], row: int, provenance: dict[str, Any]) -> Path:
    options = provenance.get("options") or {}
    if not options.get("input"):
        raise RowImageError(f"{table.name} has no provenance file naming its input folder; its images cannot be "
                            "found")
    root = Path(options["input"])
    if "filename" in columns:
        keys = [c for c in columns if c.startswith("level_")] + ["filename"]
        values = _row_values(table, keys, row)[-1]
        return _inside(root.joinpath(*values), root)
    master = options.get("master_table") or {}
    if master.get("dates_from_dicom"):
        return _dicom_master_image(table, root, int(options.get("depth") or 1), master, row)
    if not master.get("date_column"):
        raise RowImageError(f"{table.name} has no file name column; its images cannot be found")
    return _master_image(table, root, int(options.get("depth") or 1), master, row)


def _master_image(table: Path, root: Path, depth: int, master: dict[str, Any], row: int) -> Path:
    level = int(master.get("patient_level") or 1)
    patient_col, date_col = f"level_{level}", master["date_column"]
    seen = _row_values(table, [patient_col, date_col], row)
    patient, date = seen[-1]
    occurrence = sum(1 for p, d in seen[:-1] if p == patient and d == date)
    dates_csv = Path(master.get("dates_csv") or "")
    try:
        dates = read_dates(dates_csv, master["filename_column"], date_col)
    except (OSError, ValueError, KeyError) as exc:
        raise RowImageError(f"Cannot read the dates CSV {dates_csv.name}: {exc}") from None
    names = {str(f).strip() for f, d in zip(dates[master["filename_column"]], dates[date_col], strict=True)
             if d == date}

    def same_patient(value: str) -> bool:
        return value == patient or (bool(master.get("patient_id_int")) and patient_id_int(value) == patient)

    matches = [ref.path for ref in discover(root, depth).images
               if ref.filename in names and same_patient(ref.levels[level - 1])]
    if occurrence >= len(matches):
        raise RowImageError(f"No image of patient {patient} dated {date} found below {root}")
    return _inside(matches[occurrence], root)


def _dicom_master_image(table: Path, root: Path, depth: int, master: dict[str, Any], row: int) -> Path:
    """A master row whose date (and perhaps patient) came from DICOM headers: the image whose header gives them."""
    from dataclasses import fields

    mt = MasterTableOptions(**{f.name: master[f.name] for f in fields(MasterTableOptions) if f.name in master})
    seen = _row_values(table, [master_patient_column(mt), master_date_column(mt)], row)
    patient, date = seen[-1]
    occurrence = sum(1 for p, d in seen[:-1] if p == patient and d == date)
    matches = []
    for ref in discover(root, depth).images:
        if not is_dicom(ref.path):
            continue
        try:
            tags = read_tags(ref.path, [*DATE_TAGS, PATIENT_TAG])
        except ImageError:
            continue
        who = tags[PATIENT_TAG] if mt.patient_from_dicom else ref.levels[mt.patient_level - 1]
        if header_datetime(tags) == date and (who == patient or (mt.patient_id_int and patient_id_int(who) == patient)):
            matches.append(ref.path)
    if occurrence >= len(matches):
        raise RowImageError(f"No DICOM image of patient {patient} dated {date} found below {root}")
    return _inside(matches[occurrence], root)
