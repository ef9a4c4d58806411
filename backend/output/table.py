"""The result table: MEDomics column layout, streaming partial file, resume, final formats.

Columns, as MEDomics writes them: ``level_1 … level_<depth>``, ``filename``, then
``<prefix>_densefeatures_<i>`` and ``<prefix>_predictions_<i>`` (only the chosen
families).  Rows are appended batch by batch to ``<output>.partial`` (plain CSV)
together with a small state file; a run started again with the same options reads
which images are already there and continues.  When the run completes the partial
becomes the final table in one atomic rename (or is converted: master table, Parquet, ARFF).

Other extraction types name their columns the same way, ``<prefix>_<family>_<i or name>``
(``resnetfeatures``, ``latent``, ``fractal_<feature>``, ``<onnx output>_<i>``); a saliency run writes
a listing instead (one row per map: levels, filename, pathology, method, style, prediction, path).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from radfeat.output.atomic import atomic_path, write_text_atomic
from radfeat.pipeline.discovery import ImageRef


def level_columns(depth: int) -> list[str]:
    return [f"level_{i}" for i in range(1, depth + 1)]


def feature_columns(prefix: str, family: str, n: int) -> list[str]:
    name = {"dense": "densefeatures", "predictions": "predictions"}[family]
    return [f"{prefix}_{name}_{i}" for i in range(n)]


def header(depth: int, prefix: str, families: Sequence[str], n_dense: int, n_pred: int) -> list[str]:
    cols = level_columns(depth) + ["filename"]
    for fam in ("dense", "predictions"):
        if fam in families:
            cols += feature_columns(prefix, fam, n_dense if fam == "dense" else n_pred)
    return cols


def sidecar(output: Path, suffix: str) -> Path:
    """``image_extracted_features.csv`` → ``image_extracted_features<suffix>`` in the same folder."""
    return output.with_name(output.stem + suffix)


class PartialTable:
    """Append-only CSV of finished rows plus the options fingerprint that produced them."""

    def __init__(self, output: Path, columns: list[str], fingerprint: dict[str, Any], resume: bool = True,
                 log=print, options: dict[str, Any] | None = None) -> None:
        self.output = output
        self.path = output.with_name(output.name + ".partial")
        self.state_path = output.with_name(output.name + ".partial.json")
        self.columns = columns
        self.n_keys = sum(1 for c in columns if c.startswith("level_")) + 1
        self.done: set[str] = set()
        self.rows = 0
        output.parent.mkdir(parents=True, exist_ok=True)
        state = {"fingerprint": fingerprint, "columns": columns}
        if resume and self._matches(state):
            self._recover()
            if self.done:
                log(f"Resuming: {len(self.done)} image(s) already in {self.path.name}")
        else:
            if self.path.exists():
                log(f"Starting over: {self.path.name} came from different options")
            # the options ride along (the page offers "Resume" with them); only the fingerprint decides
            write_text_atomic(self.state_path, json.dumps({**state, "options": options}, indent=1, default=str))
            self.path.unlink(missing_ok=True)  # never write through a link planted at this name
            with _open_nofollow(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL) as fh:
                fh.write((",".join(columns) + "\n").encode("utf-8"))
        self._fh = _open_nofollow(self.path, os.O_WRONLY | os.O_APPEND)

    def _matches(self, state: dict[str, Any]) -> bool:
        if self.path.is_symlink() or not (self.path.is_file() and self.state_path.is_file()):
            return False
        try:
            saved = json.loads(self.state_path.read_text())
        except ValueError:
            return False
        return {k: saved.get(k) for k in state} == json.loads(json.dumps(state))

    def _recover(self) -> None:
        """Drop a half-written last line (crash mid-write), then read the keys of finished rows."""
        with open(self.path, "rb+") as fh:
            data = fh.read()
            cut = data.rfind(b"\n") + 1
            if cut < len(data):
                fh.truncate(cut)
        names = self.columns[: self.n_keys]
        opts = pacsv.ConvertOptions(include_columns=names, column_types={n: pa.string() for n in names},
                                    strings_can_be_null=False)
        table = pacsv.read_csv(self.path, convert_options=opts)
        keys = ["/".join(parts) for parts in zip(*(table.column(n).to_pylist() for n in names), strict=True)]
        self.done = set(keys)
        self.rows = len(keys)

    def append(self, refs: Sequence[ImageRef], blocks: Sequence[np.ndarray]) -> None:
        """Write one batch of rows (``blocks``: feature matrices in column order) and flush it.

        The numbers are formatted by Arrow in one vectorised call per block (the same text its
        CSV writer produces: shortest round-trip repr, float32 kept as float32), not per column.
        """
        if not refs:
            return
        self._write(refs, csv_rows(self._key_columns(refs), blocks))

    def append_columns(self, refs: Sequence[ImageRef], values: Sequence[Sequence[Any]]) -> None:
        """Write rows of any types: ``refs`` gives each row's keys, ``values`` one list per other column."""
        if not refs:
            return
        arrays: list[pa.Array] = [pa.array(col, pa.string()) for col in self._key_columns(refs)]
        arrays.extend(pa.array(list(col)) for col in values)
        table = pa.Table.from_arrays(arrays, names=self.columns)
        buf = io.BytesIO()
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
        self._write(refs, buf.getvalue())

    def _key_columns(self, refs: Sequence[ImageRef]) -> list[list[str]]:
        cols = [[r.levels[i] for r in refs] for i in range(self.n_keys - 1)]
        cols.append([r.filename for r in refs])
        cols.extend([r.tags[j] for r in refs] for j in range(len(refs[0].tags)))  # DICOM tag cells
        return cols

    def _write(self, refs: Sequence[ImageRef], data: bytes) -> None:
        self._fh.write(data)
        self._fh.flush()
        self.rows += len(refs)
        self.done.update(r.key for r in refs)

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def discard(self) -> None:
        """Remove the partial files once the final table exists."""
        self.close()
        for p in (self.path, self.state_path):
            p.unlink(missing_ok=True)


def _open_nofollow(path: Path, flags: int):
    """A binary file object for ``path`` opened without following a symbolic link at its name."""
    fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0), 0o644)
    return os.fdopen(fd, "ab" if flags & os.O_APPEND else "wb")


# Text columns of the saliency listing (feature columns always start with the prefix and an underscore).
LISTING_TEXT_COLUMNS = ("pathology", "method", "style", "path")


def is_text_column(name: str) -> bool:
    """Key and listing columns, and DICOM tag columns (keywords: letters and digits only, while every
    number column is ``<prefix>_<family>_…``)."""
    return name.startswith("level_") or name == "filename" or name in LISTING_TEXT_COLUMNS or name.isalnum()


def csv_rows(text_columns: Sequence[Sequence[str]], blocks: Sequence[np.ndarray]) -> bytes:
    """CSV lines: the text cells (quoted as Arrow's CSV writer quotes strings), then the number blocks."""
    parts = [['"' + v.replace('"', '""') + '"' for v in col] for col in text_columns]
    for block in blocks:
        block = np.asarray(block)
        if block.dtype != np.float64:  # float64 blocks (fractal features) are kept as they are
            block = block.astype(np.float32, copy=False)
        parts.append(_format_rows(block))
    return "".join(",".join(row) + "\n" for row in zip(*parts, strict=True)).encode("utf-8")


def float_text(values: pa.Array) -> pa.Array:
    """Numbers as text, as Arrow's CSV writer formats them (shortest round-trip repr), except that an
    integral value keeps a decimal point: Arrow writes ``0``, pandas would read a column of such cells as
    int64, and MEDomics' tables (Python floats) read back as float64.  Only ``-?[0-9]+`` cells change."""
    import pyarrow.compute as pc

    text = pc.cast(values, pa.string())
    whole = pc.match_substring_regex(text, r"^-?[0-9]+$")
    return pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)


def _format_rows(block: np.ndarray) -> list[str]:
    """Each row of a 2-D float block as comma-separated text (:func:`float_text` formatting)."""
    import pyarrow.compute as pc

    n, k = block.shape
    if k == 0:
        return [""] * n
    text = float_text(pa.array(np.ascontiguousarray(block).ravel()))
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int64))
    return pc.binary_join(pa.LargeListArray.from_arrays(offsets, text), ",").to_pylist()


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
            os.replace(src, output)
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
    import csv

    text = set(text_columns)
    relation = relation or Path(dest).stem
    with open(src, encoding="utf-8", newline="") as fin, atomic_path(dest) as tmp, \
            open(tmp, "w", encoding="utf-8", newline="\n") as out:
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


def read_arff(path: Path, offset: int = 0, limit: int | None = None) -> tuple[list[str], list[list[Any]], int]:
    """Columns, rows ``offset .. offset + limit`` and the row count of an ARFF file (as radfeat writes them)."""
    import csv

    columns: list[str] = []
    numeric: list[bool] = []
    rows: list[list[Any]] = []
    total = 0
    with open(path, encoding="utf-8", newline="") as fh:
        for line in fh:
            head = line.strip()
            if head.upper().startswith("@ATTRIBUTE"):
                parsed = next(csv.reader([head[len("@ATTRIBUTE"):].strip()], delimiter=" ", quotechar="'",
                                         escapechar="\\", doublequote=False, skipinitialspace=True))
                columns.append(parsed[0])
                numeric.append(parsed[-1].upper() in ("NUMERIC", "REAL", "INTEGER"))
            elif head.upper().startswith("@DATA"):
                break
        reader = csv.reader(fh, quotechar="'", escapechar="\\", doublequote=False)
        for row in reader:
            if not row or row[0].startswith("%"):
                continue
            if offset <= total and (limit is None or total < offset + limit):
                rows.append([None if v == "?" else (float(v) if num else v)
                             for v, num in zip(row, numeric, strict=True)])
            total += 1
    return columns, rows, total


def write_parquet_from_csv(src: Path, dest: Path, types: dict[str, pa.DataType] | None = None) -> None:
    import pyarrow.parquet as pq

    conv = pacsv.ConvertOptions(column_types=types or {}, strings_can_be_null=False)
    reader = pacsv.open_csv(src, convert_options=conv)
    with atomic_path(dest) as tmp:
        writer = pq.ParquetWriter(tmp, reader.schema, compression="zstd")
        try:
            for batch in reader:
                writer.write_batch(batch)
        finally:
            writer.close()


def write_errors(path: Path, errors: Iterable[tuple[str, str]]) -> None:
    import csv

    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "reason"])
        w.writerows(errors)


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str))


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if isinstance(v, np.generic):
        return _jsonable(v.item())
    return v


def read_page(path: str | Path, offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """One page of a result table (CSV or Parquet): ``{"columns", "rows", "total"}``."""
    import pandas as pd

    path = Path(path)
    offset, limit = max(0, int(offset)), max(0, int(limit))
    if path.suffix == ".arff":
        columns, rows, total = read_arff(path, offset, limit)
        return {"columns": columns, "rows": [[_jsonable(v) for v in row] for row in rows], "total": int(total),
                "offset": offset}
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        total = pf.metadata.num_rows
        table = pq.read_table(path).slice(offset, limit)
        df = table.to_pandas()
        columns = list(table.column_names)
    else:
        with open(path, "rb") as fh:
            total = max(0, sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) - 1)
        with open(path, encoding="utf-8", newline="") as fh:
            names = next(csv.reader(fh), [])
        text = {c: str for c in names if c == "filename" or c.isalnum()}  # DICOM tag cells stay text (0042, dates)
        df = pd.read_csv(path, skiprows=range(1, offset + 1), nrows=limit, dtype=text,
                         keep_default_na=False, na_values=["", "nan", "NaN"])
        columns = list(df.columns)
    rows = [[_jsonable(v) for v in row] for row in df.itertuples(index=False, name=None)]
    return {"columns": columns, "rows": rows, "total": int(total), "offset": offset}
