"""Reading one page of a result table (CSV, Parquet or ARFF) for the page's table view."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from radfeat.output.tabular import table_shape

_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t"}  # any other escaped character stands for itself


def split_arff(text: str, sep: str = ",") -> list[tuple[str, bool]]:
    """The values of one ARFF line, each with whether it was quoted (quotes ' or ", backslash escapes)."""
    items: list[tuple[str, bool]] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] in "'\"":
            quote, i, buf = text[i], i + 1, []
            while i < n and text[i] != quote:
                if text[i] == "\\" and i + 1 < n:
                    buf.append(_UNESCAPE.get(text[i + 1], text[i + 1]))
                    i += 2
                else:
                    buf.append(text[i])
                    i += 1
            items.append(("".join(buf), True))
            i += 1
        else:
            j = i
            while j < n and text[j] != sep and not (sep == " " and text[j] == "\t"):
                j += 1
            items.append((text[i:j].strip(), False))
            i = j
        while i < n and text[i] in " \t" and text[i] != sep:
            i += 1
        if i < n and text[i] == sep:
            i += 1
    return items


def read_arff(path: Path, offset: int = 0, limit: int | None = None) -> tuple[list[str], list[list[Any]], int]:
    """Columns, rows ``offset .. offset + limit`` and the row count of an ARFF file (as radfeat writes them)."""
    columns: list[str] = []
    numeric: list[bool] = []
    rows: list[list[Any]] = []
    total = 0
    with open(path, encoding="utf-8", newline="") as fh:
        for line in fh:
            head = line.strip()
            if head.upper().startswith("@ATTRIBUTE"):
                parsed = split_arff(head[len("@ATTRIBUTE"):].strip(), " ")
                columns.append(parsed[0][0])
                numeric.append(parsed[-1][0].upper() in ("NUMERIC", "REAL", "INTEGER"))
            elif head.upper().startswith("@DATA"):
                break
        for line in fh:
            text = line.rstrip("\r\n")
            if not text.strip() or text.lstrip().startswith("%"):
                continue
            if offset <= total and (limit is None or total < offset + limit):
                values = split_arff(text)
                rows.append([None if (v == "?" and not quoted) else (float(v) if num else v)
                             for (v, quoted), num in zip(values, numeric, strict=True)])
            total += 1
    return columns, rows, total


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    return v


def _parquet_rows(path: Path, offset: int, limit: int) -> pa.Table:
    """Rows ``offset … offset + limit`` of a Parquet file, reading only the row groups that hold them."""
    pf = pq.ParquetFile(path)
    parts: list[pa.Table] = []
    start, first = 0, 0
    for i in range(pf.metadata.num_row_groups):
        n = pf.metadata.row_group(i).num_rows
        if start + n > offset and start < offset + limit:
            if not parts:
                first = offset - start
            parts.append(pf.read_row_group(i))
        start += n
    if not parts:
        return pf.schema_arrow.empty_table()
    return pa.concat_tables(parts).slice(first, limit)


def read_page(path: str | Path, offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """One page of a result table (CSV, Parquet or ARFF): ``{"columns", "rows", "total"}``."""
    path = Path(path)
    offset, limit = max(0, int(offset)), max(0, int(limit))
    if path.suffix == ".arff":
        columns, rows, total = read_arff(path, offset, limit)
        return {"columns": columns, "rows": [[_jsonable(v) for v in row] for row in rows], "total": int(total),
                "offset": offset}
    if path.suffix == ".parquet":
        table = _parquet_rows(path, offset, limit)
        total = table_shape(path).total
        df = table.to_pandas()
        columns = list(table.column_names)
    else:
        total = table_shape(path).total  # counted once per file version
        with open(path, encoding="utf-8", newline="") as fh:
            names = next(csv.reader(fh), [])
        text = {c: str for c in names if c == "filename" or c.isalnum()}  # DICOM tag cells stay text (0042, dates)
        df = pd.read_csv(path, skiprows=range(1, offset + 1), nrows=limit, dtype=text,
                         keep_default_na=False, na_values=["", "nan", "NaN"])
        columns = list(df.columns)
    rows = [[_jsonable(v) for v in row] for row in df.itertuples(index=False, name=None)]
    return {"columns": columns, "rows": rows, "total": int(total), "offset": offset}
