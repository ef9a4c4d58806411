"""The dates CSV of master-table mode: which image was taken when."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd


def _read(path: Path, nrows: int | None = None) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, nrows=nrows)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"Cannot read the dates CSV: {exc}") from None


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
