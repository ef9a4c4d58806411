"""Reading result tables column by column, in bounded chunks: CSV, Parquet and ARFF alike.

The dataset view asks for a few columns of tables that may hold 100 000 rows × 1024
features (about 1 GB of CSV).  Nothing here loads a whole table: :func:`iter_columns`
yields Arrow record batches of only the requested columns (Arrow's CSV reader parses
every line but converts only those columns), and :func:`table_shape` reads the column
names and counts the rows once per file version.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.csv as pacsv
from radfeat.output.columns import is_text_column

BLOCK_BYTES = 8 << 20  # Arrow CSV block: ~400 rows of 1 024 features (larger blocks cost memory, not time)
WHOLE_BLOCK_BYTES = 32 << 20  # a whole-table CSV read: ~1 600 rows of 1 024 features per batch
MAX_GROUP_ROWS = 65_536  # Parquet row groups up to this size are read whole


@dataclass(frozen=True)
class Shape:
    columns: tuple[str, ...]
    total: int
    data_line: int = 0  # ARFF: lines before the first data row


def file_key(path: Path) -> tuple[str, int, int]:
    """Identity of one version of a file: path, size and modification time (ns)."""
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


def table_shape(path: str | Path) -> Shape:
    path = Path(path)
    return _shape(*file_key(path))


@functools.lru_cache(maxsize=32)
def _shape(path_str: str, _size: int, _mtime: int) -> Shape:
    path = Path(path_str)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        return Shape(tuple(meta.schema.to_arrow_schema().names), int(meta.num_rows))
    if path.suffix == ".arff":
        return _arff_shape(path)
    with open(path, encoding="utf-8", newline="") as fh:
        columns = tuple(next(csv.reader(fh), []))
    with open(path, "rb") as fh:
        return Shape(columns, max(0, count_lines(fh) - 1))


def count_lines(fh: IO[bytes]) -> int:
    """Newlines in an open binary file, read in 4 MiB chunks."""
    return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 22), b""))


def _arff_shape(path: Path) -> Shape:
    columns: list[str] = []
    total, data_line, in_data = 0, 0, False
    with open(path, encoding="utf-8", newline="") as fh:
        for number, line in enumerate(fh, 1):
            head = line.strip()
            if in_data:
                total += bool(head) and not head.startswith("%")
            elif head.upper().startswith("@ATTRIBUTE"):
                parsed = next(csv.reader([head[len("@ATTRIBUTE"):].strip()], delimiter=" ", quotechar="'",
                                         escapechar="\\", doublequote=False, skipinitialspace=True))
                columns.append(parsed[0])
            elif head.upper().startswith("@DATA"):
                in_data, data_line = True, number
    return Shape(tuple(columns), total, data_line)


def _arrow_type(name: str, numeric: bool) -> pa.DataType:
    return pa.float32() if numeric else pa.string()


def iter_columns(path: str | Path, columns: Sequence[str], numeric: bool = True,
                 batch_rows: int = 8192, whole: bool = False) -> Iterator[pa.RecordBatch]:
    """Record batches of ``columns`` only, in file order (numbers as float32 when ``numeric``).

    ``whole``: a CSV is parsed in one multithreaded read (about a quarter less CPU than the streaming
    reader) and its batches handed out and let go one by one: memory holds the chosen columns of the
    whole table, so the caller asks for it only when they fit its bound."""
    path = Path(path)
    columns = list(columns)
    if path.suffix == ".parquet":
        yield from _parquet_batches(path, columns, numeric, batch_rows)
        return
    read, parse, conv = _csv_options(path, columns, numeric)
    if not whole:
        yield from pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=conv)
        return
    read.block_size = WHOLE_BLOCK_BYTES
    batches = pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=conv).to_batches()
    batches.reverse()
    while batches:
        yield batches.pop()


def _csv_options(path: Path, columns: list[str], numeric: bool) -> tuple:
    types = {c: _arrow_type(c, numeric) for c in columns}
    read = pacsv.ReadOptions(block_size=BLOCK_BYTES)
    parse = pacsv.ParseOptions()
    conv = pacsv.ConvertOptions(include_columns=columns, column_types=types, strings_can_be_null=False,
                                null_values=["", "nan", "NaN", "?"] if numeric else [])
    if path.suffix == ".arff":  # the data section is CSV with single quotes and backslash escapes
        shape = table_shape(path)
        read = pacsv.ReadOptions(block_size=BLOCK_BYTES, skip_rows=shape.data_line,
                                 column_names=list(shape.columns))
        parse = pacsv.ParseOptions(quote_char="'", escape_char="\\", double_quote=False, ignore_empty_lines=True)
    return read, parse, conv


def _parquet_batches(path: Path, columns: list[str], numeric: bool, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Row group by row group when they are small (radfeat writes them so: least memory and time), else in
    batches of ``batch_rows`` (a file written as one huge row group)."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    meta = pf.metadata
    small = all(meta.row_group(i).num_rows <= MAX_GROUP_ROWS for i in range(meta.num_row_groups))
    tables = ((pf.read_row_group(i, columns=columns) for i in range(meta.num_row_groups)) if small else
              (pa.Table.from_batches([b]) for b in pf.iter_batches(batch_size=batch_rows, columns=columns)))
    for table in tables:
        table = table.select(columns)
        if numeric and any(t != pa.float32() for t in table.schema.types):
            table = table.cast(pa.schema([(c, pa.float32()) for c in columns]))
        yield from table.combine_chunks().to_batches()


def column_kind(name: str) -> str:
    """What a column holds: ``id`` (levels, file name, patient, date), ``feature``, ``prediction``,
    ``fractal`` or ``text`` (the saliency listing's words)."""
    if name.startswith("level_") or name == "filename":
        return "id"
    if is_text_column(name):
        return "text"
    if "_predictions_" in name:
        return "prediction"
    if "_fractal_" in name:
        return "fractal"
    if "_" not in name:  # master tables: the date column (and patient columns are level_N)
        return "id"
    return "feature"


def column_kinds(columns: Sequence[str], dtypes: dict[str, bool] | None = None) -> dict[str, str]:
    """Kinds of every column; ``dtypes`` (name → numeric) turns non-numeric 'feature' guesses into 'id'."""
    kinds = {c: column_kind(c) for c in columns}
    if dtypes:
        for c, numeric in dtypes.items():
            if not numeric and kinds.get(c) in ("feature", "prediction", "fractal"):
                kinds[c] = "id"
    return kinds


def read_values(path: str | Path, column: str, offset: int, limit: int, numeric: bool) -> list:
    """Values ``offset … offset + limit`` of one column, streaming (memory: one batch plus the page)."""
    out: list = []
    seen = 0
    for batch in iter_columns(path, [column], numeric=numeric):
        n = batch.num_rows
        if seen + n > offset:
            start = max(0, offset - seen)
            out.extend(batch.column(0).slice(start, limit - len(out)).to_pylist())
            if len(out) >= limit:
                break
        seen += n
    return out
