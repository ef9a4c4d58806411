"""Master-table mode: join the rows to the dates CSV, keep the patient column (MEDprofiles layout).

Like MEDomics, rows are joined on the image file name; the patient level column
comes first, the date column second, then the features; the other level columns
and ``filename`` are dropped.  Unlike a silent inner join, every image without a
date, date without an image, duplicate file name and unparseable date is counted
and listed in ``<output>.unmatched.csv``.

With ``dates_from_dicom`` each image's date comes from its own DICOM header instead (AcquisitionDateTime,
else StudyDate + StudyTime, see :func:`radfeat.pipeline.dicom.header_datetime`), matched by the image's
full path below the input folder, so PACS exports whose file names repeat across folders join correctly;
``patient_from_dicom`` takes the patient column from PatientID.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from radfeat.options import MasterTableOptions, master_date_column, master_patient_column
from radfeat.output.atomic import atomic_open
from radfeat.output.dates import parse_dates, read_dates
from radfeat.output.partial import csv_rows

_DIGITS = re.compile(r"\d+")
BRIEF_NAMES = 50


@dataclass
class MasterReport:
    rows: int = 0
    images_without_date: int = 0
    dates_without_image: int = 0
    duplicate_filenames: int = 0
    duplicate_dates: int = 0
    unparseable_dates: int = 0
    ids_without_digits: int = 0
    images_without_patient: int = 0
    listing: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "listing"}

    def brief(self, listing_path: Path | None, shown: int = BRIEF_NAMES) -> dict[str, Any]:
        """What the page says in words: rows, the first unmatched image names, the other counts."""
        images = [item for issue, item in self.listing if issue == "image without date"]
        return {"rows": self.rows, "unmatched_images": images[:shown], "unmatched_images_total": len(images),
                "unmatched_dates": self.dates_without_image,
                "duplicates": self.duplicate_filenames + self.duplicate_dates,
                "unparseable": self.unparseable_dates,
                "unmatched_path": None if listing_path is None else str(listing_path)}


def patient_id_int(value: str) -> str:
    """``p123`` → ``123``: the first run of digits (MEDomics' "patient id as integer")."""
    m = _DIGITS.search(value)
    return str(int(m.group())) if m else value


def _number_block(table: pa.Table) -> np.ndarray:
    """The feature columns as one float64 matrix (missing cells NaN), for :func:`csv_rows`."""
    if not table.num_columns:
        return np.zeros((table.num_rows, 0))
    return np.column_stack([c.cast(pa.float64()).to_numpy(zero_copy_only=False) for c in table.columns])


def _csv_dates(mt: MasterTableOptions, report: MasterReport) -> dict[str, list[str]]:
    """File name → its dates in the dates CSV (duplicates and unparseable dates counted)."""
    dates = read_dates(Path(mt.dates_csv).expanduser(), mt.filename_column, mt.date_column)
    by_name: dict[str, list[str]] = defaultdict(list)
    for fname, date in zip(dates[mt.filename_column], dates[mt.date_column], strict=True):
        by_name[fname.strip()].append(date)
    for fname, ds in by_name.items():
        if len(ds) > 1:
            report.duplicate_dates += len(ds) - 1
            report.listing.append(("date listed more than once", fname))
    parsed = parse_dates(dates[mt.date_column])
    for fname, date, ok in zip(dates[mt.filename_column], dates[mt.date_column], parsed.notna(), strict=True):
        if not ok:
            report.unparseable_dates += 1
            report.listing.append(("unparseable date", f"{fname}: {date}"))
    return by_name


def build_master(raw_csv: Path, dest: Path, mt: MasterTableOptions, depth: int,
                 listing_path: Path | None = None, headers: Any = None) -> MasterReport:
    """Stream ``raw_csv`` (plain layout) into the master table at ``dest`` (CSV, atomic).

    ``headers`` (a :class:`radfeat.pipeline.headers.HeaderPass`) gives dates and patients from DICOM headers.
    """
    report = MasterReport()
    by_name = {} if mt.dates_from_dicom else _csv_dates(mt, report)
    header_dates = headers.dates if headers is not None else {}
    header_patients = headers.patients if headers is not None else {}
    patient_col = f"level_{mt.patient_level}"
    key_cols = [f"level_{i}" for i in range(1, depth + 1)] + ["filename"]
    types = {c: pa.string() for c in key_cols}
    reader = pacsv.open_csv(raw_csv, convert_options=pacsv.ConvertOptions(column_types=types,
                                                                          strings_can_be_null=False))
    feature_cols = [c for c in reader.schema.names if c not in key_cols]
    seen_names: dict[str, int] = defaultdict(int)
    used: set[str] = set()
    with atomic_open(dest, "wb") as out:
        out.write((",".join([master_patient_column(mt), master_date_column(mt)] + feature_cols) + "\n").encode())
        for batch in reader:
            table = pa.Table.from_batches([batch])
            names = table.column("filename").to_pylist()
            patients = table.column(patient_col).to_pylist()
            take, out_patients, out_dates = [], [], []
            for i, (name, patient) in enumerate(zip(names, patients, strict=True)):
                seen_names[name] += 1
                key = "/".join([table.column(c)[i].as_py() for c in key_cols])
                found = ([header_dates[key]] if header_dates.get(key) else None) if mt.dates_from_dicom \
                    else by_name.get(name)
                if not found:
                    report.images_without_date += 1
                    report.listing.append(("image without date", key))
                    continue
                if mt.patient_from_dicom:
                    patient = header_patients.get(key, "")
                    if not patient:
                        report.images_without_patient += 1
                        report.listing.append(("image without PatientID", key))
                        continue
                used.add(name)
                if mt.patient_id_int:
                    pid = patient_id_int(patient)
                    if pid == patient and not patient.isdigit():
                        report.ids_without_digits += 1
                    patient = pid
                for date in found:
                    take.append(i)
                    out_patients.append(patient)
                    out_dates.append(date)
            if not take:
                continue
            sub = table.take(pa.array(take)).select(feature_cols)
            out.write(csv_rows([out_patients, out_dates], [_number_block(sub)]))
            report.rows += len(take)
    _close_report(report, mt, seen_names, by_name, used, listing_path)
    return report


def _close_report(report: MasterReport, mt: MasterTableOptions, seen_names: dict[str, int], by_name: dict[str, Any],
                  used: set[str], listing_path: Path | None) -> None:
    """Count repeated file names and unused dates; write the listing of everything unmatched."""
    for name, count in seen_names.items():
        if count > 1 and not mt.dates_from_dicom:  # matched by full path: repeated names are fine
            report.duplicate_filenames += count - 1
            report.listing.append(("file name used by several images", name))
    for name in by_name:
        if name not in used:
            report.dates_without_image += 1
            report.listing.append(("date without image", name))
    if listing_path is not None:
        with atomic_open(listing_path, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["issue", "item"])
            w.writerows(report.listing)
