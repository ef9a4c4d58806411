"""The dates CSV of master-table mode: which image was taken when."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from radfeat.errors import InvalidInput


class DatesError(InvalidInput, ValueError):
    """The dates CSV cannot be read; the message says why."""

SNIFF_BYTES = 64 * 1024
_TEXT_CONTROLS = {9, 10, 12, 13}


def check_text(path: Path) -> None:
    """Refuse a file that is not text (a spreadsheet, an image, an archive…) before pandas guesses at it."""
    with open(path, "rb") as fh:
        head = fh.read(SNIFF_BYTES)
    controls = sum(1 for b in head if b < 32 and b not in _TEXT_CONTROLS)
    if b"\x00" in head or (head and controls / len(head) > 0.05):
        kind = " (an Excel workbook; save it as CSV)" if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")) else ""
        raise ValueError(f"{path.name} is not a text CSV file{kind}; choose the CSV file of image dates")


def _read(path: Path, nrows: int | None = None) -> pd.DataFrame:
    check_text(path)
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, nrows=nrows)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DatesError(f"Cannot read the dates CSV: {exc}") from None


def read_columns(path: Path) -> list[str]:
    return list(_read(path, nrows=0).columns)


def inspect_csv(path: str | Path, sample: int = 5) -> dict[str, Any]:
    """Columns, row count and the first rows of a CSV, for the page's column pickers."""
    df = _read(Path(path))
    return {
        "columns": list(df.columns),
        "rows": int(len(df)),
        "sample": df.head(sample).to_dict(orient="records"),
    }


def read_dates(path: Path, filename_column: str, date_column: str) -> pd.DataFrame:
    """The two chosen columns as strings, in file order."""
    df = _read(path)
    return df[[filename_column, date_column]]
