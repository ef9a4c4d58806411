"""One page of a result table, in memory proportional to the page, whatever the offset and the file size.

* CSV: Arrow's streaming reader (every column read as text, blocks of 1 MB) counts the rows and keeps
  only the slice asked for; the page is then typed the way pandas reads a CSV (numbers, empty = null).
* Parquet: the row groups before the offset are skipped from the footer's counts, the rest is read in
  record batches of at most ``limit`` rows.
* ARFF: streamed line by line (:func:`read_arff`).

An offset past the last row is refused with :class:`OffsetError` (the page says how many rows there are).
``source`` may be a path or a binary file object already opened (the backend opens files itself so
that what it checked is what it reads).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from radfeat.errors import InvalidInput

MAX_HEADER = 16 << 20
BLOCK = 1 << 20


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


def read_arff(path: Path | IO[bytes], offset: int = 0,
              limit: int | None = None) -> tuple[list[str], list[list[Any]], int]:
    """Columns, rows ``offset .. offset + limit`` and the row count of an ARFF file (as radfeat writes them).

    Streamed: only the rows of the page are kept.  ``path`` may be a binary file object already open.
    """
    columns: list[str] = []
    numeric: list[bool] = []
    rows: list[list[Any]] = []
    total = 0
    fh = open(path, encoding="utf-8", newline="") if isinstance(path, str | Path) else \
        io.TextIOWrapper(path, encoding="utf-8", newline="")  # noqa: SIM115
    with fh:
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


class OffsetError(InvalidInput, ValueError):
    """The offset lies past the end of the table (JSON-RPC -32602 with the row count)."""

    def __init__(self, offset: int, total: int):
        self.offset, self.total = offset, total
        super().__init__(f"offset {offset} is past the end of the table ({total} row{'s' if total != 1 else ''})")

    def rpc_message(self) -> str:
        return f"Parameter 'offset' of read_table: {self}"

    def rpc_data(self) -> dict[str, Any]:
        return {"parameter": "offset", "total": self.total}


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    return v


def _open(source: str | Path | IO[bytes]) -> tuple[IO[bytes], bool]:
    if isinstance(source, str | Path):
        return open(source, "rb"), True  # noqa: SIM115 - closed by the caller
    return source, False


def _csv_header(fh: IO[bytes]) -> list[str]:
    line = fh.readline(MAX_HEADER)
    if line and not line.endswith(b"\n") and len(line) >= MAX_HEADER:
        raise ValueError("the header line is too long for a table")
    fh.seek(0)
    return next(csv.reader([line.decode("utf-8-sig")]), [])


def _count_rows(fh: IO[bytes]) -> int:
    """Data rows of a CSV: its line count less the header (one pass in 1 MB blocks; a last line without newline counts)."""
    lines, last = 0, b"\n"
    for block in iter(lambda: fh.read(BLOCK), b""):
        lines += block.count(b"\n")
        last = block[-1:]
    fh.seek(0)
    return max(0, lines + (last != b"\n") - 1)


def _csv_page(fh: IO[bytes], offset: int, limit: int) -> tuple[list[str], list[list[Any]], int]:
    import pandas as pd

    columns = _csv_header(fh)
    if not columns:
        return [], [], 0
    total = _count_rows(fh)
    if offset > total:
        raise OffsetError(offset, total)  # refused before any parsing
    reader = pacsv.open_csv(
        fh, read_options=pacsv.ReadOptions(block_size=BLOCK, skip_rows_after_names=offset, use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in columns},
                                             strings_can_be_null=False))
    kept: list[pa.RecordBatch] = []
    have = 0
    for batch in reader:  # skipped rows are parsed and dropped block by block; stop once the page is full
        if have >= limit:
            break
        part = batch.slice(0, limit - have)
        kept.append(part)
        have += part.num_rows
    if not have:
        return list(reader.schema.names), [], total
    buf = io.BytesIO()
    pacsv.write_csv(pa.Table.from_batches(kept), buf)
    buf.seek(0)
    text = {c: str for c in columns if c == "filename" or c.isalnum()}  # DICOM tag cells stay text (0042, dates)
    df = pd.read_csv(buf, dtype=text, keep_default_na=False, na_values=["", "nan", "NaN"])
    rows = [[_jsonable(v) for v in row] for row in df.itertuples(index=False, name=None)]
    return list(df.columns), rows, total


def _parquet_page(fh: IO[bytes], offset: int, limit: int) -> tuple[list[str], list[list[Any]], int]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(fh)
    total = pf.metadata.num_rows
    if offset > total:
        raise OffsetError(offset, total)
    columns = list(pf.schema_arrow.names)
    start, groups = 0, []
    for i in range(pf.num_row_groups):
        n = pf.metadata.row_group(i).num_rows
        if start + n > offset and start < offset + limit:
            groups.append(i)
        elif not groups:
            start += n
    rows: list[list[Any]] = []
    skip = offset - start
    if groups and limit:
        for batch in pf.iter_batches(batch_size=max(1, min(limit, 1024)), row_groups=groups):
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            part = batch.slice(skip, limit - len(rows))
            skip = 0
            rows.extend([_jsonable(v) for v in r] for r in zip(*(c.to_pylist() for c in part.columns), strict=True))
            if len(rows) >= limit:
                break
    return columns, rows, total


def read_page(source: str | Path | IO[bytes], offset: int = 0, limit: int = 50,
              suffix: str | None = None) -> dict[str, Any]:
    """One page of a result table (CSV, Parquet or ARFF): ``{"columns", "rows", "total", "offset"}``."""
    offset, limit = max(0, int(offset)), max(0, int(limit))
    kind = (suffix or Path(str(getattr(source, "name", source))).suffix).lower()
    fh, own = _open(source)
    try:
        if kind == ".arff":
            columns, rows, total = read_arff(fh, offset, limit)
            if offset > total:
                raise OffsetError(offset, total)
            rows = [[_jsonable(v) for v in row] for row in rows]
        elif kind == ".parquet":
            columns, rows, total = _parquet_page(fh, offset, limit)
        else:
            columns, rows, total = _csv_page(fh, offset, limit)
    except pa.ArrowException as exc:
        raise ValueError(str(exc).splitlines()[0][:300]) from None
    finally:
        if own:
            fh.close()
    return {"columns": columns, "rows": rows, "total": int(total), "offset": offset}
