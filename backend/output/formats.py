"""Final formats: the finished partial CSV published as CSV, Parquet or ARFF, atomically; side files.

CSV is a rename.  Parquet keeps float32 features (float64 for fractal features), string keys and
typed ids (master table).  ARFF (WEKA) has ``STRING`` keys and ``NUMERIC`` features, with the
numbers copied as the CSV has them and NaN/inf written as ``?`` (missing).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from radfeat.output.atomic import atomic_open, replace, write_text_atomic
from radfeat.output.columns import is_text_column
from radfeat.output.partial import PartialTable


def finalize_plain(partial: PartialTable, output: Path, fmt: str, number: pa.DataType | None = None) -> None:
    """Publish the partial as the final table (atomic rename for CSV, conversion for Parquet and ARFF)."""
    partial.close()
    publish(partial.path, output, fmt, [c for c in partial.columns if is_text_column(c)], number)


def publish(src: Path, output: Path, fmt: str, text_columns: Sequence[str], number: pa.DataType | None = None,
            infer: Sequence[str] = ()) -> None:
    """Write the finished CSV ``src`` as ``output`` in ``fmt``, atomically (CSV: a rename).

    ``text_columns`` are strings, ``infer`` columns get the type Arrow reads off them (numeric patient ids),
    every other column is a number (``number``, default float32, as the models compute them).
    """
    if fmt == "csv":
        if Path(src) != Path(output):
            replace(src, output)
    elif fmt == "arff":
        write_arff_from_csv(src, output, text_columns=text_columns)
    else:
        with open(src, encoding="utf-8", newline="") as fh:
            columns = next(csv.reader(fh), [])
        text = set(text_columns)
        types = {c: (pa.string() if c in text else (number or pa.float32())) for c in columns if c not in infer}
        write_parquet_from_csv(src, output, types)


def _arff_quote(text: str) -> str:
    """An ARFF (WEKA) string value or name: single quotes, backslash escapes."""
    escaped = (text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
               .replace("\t", "\\t"))
    return f"'{escaped}'"


_ARFF_MISSING = {"", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-Infinity"}


def write_arff_from_csv(src: Path, dest: Path, text_columns: Iterable[str] = (), relation: str | None = None,
                        chunk_rows: int = 2048) -> None:
    """Convert a CSV table to ARFF (WEKA), streaming, atomically.

    Columns named in ``text_columns`` become ``STRING`` attributes, every other column ``NUMERIC``;
    empty cells and NaN/inf become ``?`` (missing).  Numbers are copied as written in the CSV.
    """
    text = set(text_columns)
    relation = relation or Path(dest).stem
    with open(src, encoding="utf-8", newline="") as fin, \
            atomic_open(dest, "w", encoding="utf-8", newline="\n") as out:
        reader = csv.reader(fin)
        columns = next(reader, None) or []
        is_text = [c in text for c in columns]
        out.write(f"% written by radfeat\n@RELATION {_arff_quote(relation)}\n\n")
        for name, t in zip(columns, is_text, strict=True):
            out.write(f"@ATTRIBUTE {_arff_quote(name)} {'STRING' if t else 'NUMERIC'}\n")
        out.write("\n@DATA\n")
        lines: list[str] = []
        for row in reader:
            if not row:
                continue
            lines.append(",".join(
                (_arff_quote(v) if t else ("?" if v in _ARFF_MISSING else v))
                for v, t in zip(row, is_text, strict=True)))
            if len(lines) >= chunk_rows:
                out.write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            out.write("\n".join(lines) + "\n")


PARQUET_GROUP_BYTES = 32 << 20  # row groups of ~32 MB (8 000 rows of 1 024 float32 features), not one per CSV block


def write_parquet_from_csv(src: Path, dest: Path, types: dict[str, pa.DataType] | None = None) -> None:
    """Stream a CSV into Parquet, gathering the reader's small blocks into row groups of ~32 MB: a row group per
    CSV block (~50 wide rows) would make readers fetch thousands of tiny column chunks."""
    conv = pacsv.ConvertOptions(column_types=types or {}, strings_can_be_null=False)
    reader = pacsv.open_csv(src, convert_options=conv)
    with atomic_open(dest, "wb") as tmp:  # written through the new file's own descriptor
        writer = pq.ParquetWriter(tmp, reader.schema, compression="zstd")
        try:
            pending: list[pa.RecordBatch] = []
            for batch in reader:
                pending.append(batch)
                if sum(b.nbytes for b in pending) >= PARQUET_GROUP_BYTES:
                    writer.write_table(pa.Table.from_batches(pending), row_group_size=1 << 30)
                    pending = []
            if pending:
                writer.write_table(pa.Table.from_batches(pending), row_group_size=1 << 30)
        finally:
            writer.close()


def write_errors(path: Path, errors: Iterable[tuple[str, str]]) -> None:
    write_listing(path, ["path", "reason"], errors)


def write_listing(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """A small CSV listing (errors, skipped items), atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str))
