"""The master table's options (MEDprofiles layout) and their validation, part of :mod:`radfeat.options`.

The same rules and words for CLI, RPC and page; :func:`radfeat.options.validate` calls
:func:`validate_master_table`.  The dates CSV is read (pandas, :mod:`radfeat.output.dates`) only when
one is checked, so importing the options stays light.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from radfeat.errors import Problem
from radfeat.output.paths import path_problem

DEFAULT_DICOM_DATE_COLUMN = "date"
WORD_RE = re.compile(r"[A-Za-z0-9_]+")  # letters, digits, underscores: column names and prefixes


@dataclass
class MasterTableOptions:
    """Join the rows to a CSV of image dates and keep one patient column (MEDprofiles layout)."""

    dates_csv: str = ""
    filename_column: str = ""
    date_column: str = ""
    patient_level: int = 1
    patient_id_int: bool = False
    dates_from_dicom: bool = False  # each image's date from its DICOM header instead of the dates CSV
    patient_from_dicom: bool = False  # the patient column from PatientID instead of the level_K folder

def is_int(value: object) -> bool:
    """A whole number that is not a bool (JSON ``true`` is no box size); the options of every kind use it."""
    return isinstance(value, int) and not isinstance(value, bool)

def master_date_column(mt: MasterTableOptions) -> str:
    """The master table's date column: the dates CSV's, or (dates from DICOM headers) ``date`` unless named."""
    return mt.date_column or (DEFAULT_DICOM_DATE_COLUMN if mt.dates_from_dicom else "")

def master_patient_column(mt: MasterTableOptions) -> str:
    return "PatientID" if mt.patient_from_dicom else f"level_{mt.patient_level}"

def validate_master_table(mt: MasterTableOptions, depth: int, *, check_paths: bool = True) -> list[Problem]:
    problems: list[Problem] = []
    for key in ("dates_from_dicom", "patient_from_dicom", "patient_id_int"):
        if not isinstance(getattr(mt, key), bool):
            problems.append(Problem(f"master_table.{key}", f"Option '{key}' must be true or false"))
    if mt.dates_from_dicom:
        if mt.date_column and not WORD_RE.fullmatch(mt.date_column):
            problems.append(Problem("master_table.date_column",
                                    "Date column name may contain only letters, digits and underscores"))
    elif not mt.dates_csv:
        problems.append(Problem("master_table.dates_csv", "Master table needs a CSV of image dates"))
    elif path_problem(mt.dates_csv, "Dates CSV"):
        problems.append(Problem("master_table.dates_csv", path_problem(mt.dates_csv, "Dates CSV")))
    elif check_paths and not Path(mt.dates_csv).expanduser().is_file():
        problems.append(Problem("master_table.dates_csv", f"Dates CSV not found: {mt.dates_csv}"))
    else:
        problems.extend(_dates_csv_problems(mt, check_paths))
    if not is_int(mt.patient_level) or not (is_int(depth) and 1 <= mt.patient_level <= max(depth, 1)):
        problems.append(
            Problem("master_table.patient_level", f"Patient level must be between 1 and the folder depth ({depth})")
        )
    return problems


def _dates_csv_problems(mt: MasterTableOptions, check_paths: bool) -> list[Problem]:
    """The dates CSV's columns and dates, read and checked before any extraction (encoding, separator, dates)."""
    from radfeat.output import dates  # the seam to pandas: imported only when a dates CSV is checked

    problems: list[Problem] = []
    columns = None
    if check_paths:
        try:
            columns = dates.read_columns(Path(mt.dates_csv).expanduser())
        except ValueError as exc:
            problems.append(Problem("master_table.dates_csv", str(exc)))
    for key, label in (("filename_column", "file name"), ("date_column", "date")):
        col = getattr(mt, key)
        if not col:
            problems.append(Problem(f"master_table.{key}", f"Choose the {label} column of the dates CSV"))
        elif columns is not None and col not in columns:
            problems.append(Problem(f"master_table.{key}", f"Column '{col}' is not in the dates CSV "
                                                           f"(its columns: {', '.join(columns)})"))
    if mt.filename_column and mt.filename_column == mt.date_column:
        problems.append(Problem("master_table.date_column", "File name and date columns must differ"))
    elif columns is not None and mt.date_column in columns:
        problems.extend(Problem("master_table.date_column", m)
                        for m in dates.date_problems(Path(mt.dates_csv).expanduser(), mt.date_column))
    return problems

