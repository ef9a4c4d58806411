"""The streaming partial table: finished rows appended batch by batch, and resume.

Rows go to ``<output>.partial`` (plain CSV) together with a small state file (the options
fingerprint and the columns) and ``<output>.partial.files``, which version of each image the rows
came from (:mod:`radfeat.output.stamps`); a run started again with the same options reads which
images are already there, drops or redoes those whose file changed since, and continues.  When the run completes, :mod:`radfeat.output.formats` publishes the
partial as the final table.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from radfeat.output import stamps as bookkeeping
from radfeat.output.atomic import ensure_folder, open_file, remove, write_text_atomic
from radfeat.pipeline.discovery import ImageRef


class PartialTable:
    """Append-only CSV of finished rows plus the options fingerprint that produced them."""

    def __init__(self, output: Path, columns: list[str], fingerprint: dict[str, Any], resume: bool = True,
                 log: Callable[[str], None] = print, options: dict[str, Any] | None = None) -> None:
        self.output = output
        self.path = output.with_name(output.name + ".partial")
        self.state_path = output.with_name(output.name + ".partial.json")
        self.columns = columns
        self.n_keys = sum(1 for c in columns if c.startswith("level_")) + 1
        self.stamps_path = bookkeeping.stamps_path(self.path)
        self._file_keys: list[str] = []  # keys of the resumed rows, in file order (until reconcile)
        self.index: dict[str, int] = {}
        self.in_order = True  # rows so far are the first images in discovery order (else: sorted at the end)
        self.done: set[str] = set()
        self.stamps: dict[str, bookkeeping.Stamp] = {}
        self.rows = 0
        self.log = log
        ensure_folder(output.parent)
        state = {"fingerprint": fingerprint, "columns": columns, "bookkeeping": 2}
        if resume and self._matches(state):
            self._recover()
        else:
            if self.path.exists():
                log(f"Starting over: {self.path.name} came from different options")
            # the options ride along (the page offers "Resume" with them); only the fingerprint decides
            write_text_atomic(self.state_path, json.dumps({**state, "options": options}, indent=1, default=str))
            write_text_atomic(self.path, ",".join(columns) + "\n")  # never through a link planted at this name
            write_text_atomic(self.stamps_path, "")
        # unbuffered: a failed write (disk full) leaves nothing pending that a later close would retry
        self._fh = _open_append(self.path)
        self._stamps_fh = _open_append(self.stamps_path)

    def _matches(self, state: dict[str, Any]) -> bool:
        if self.path.is_symlink() or not (self.path.is_file() and self.state_path.is_file()):
            return False
        try:
            with open_file(self.state_path, "rb") as fh:
                saved = json.loads(fh.read(1 << 20))
        except ValueError:
            return False
        return {k: saved.get(k) for k in state} == json.loads(json.dumps(state))

    def _recover(self) -> None:
        """Drop a half-written last line (crash mid-write), then read the keys of finished rows."""
        with open_file(self.path, "rb+") as fh:
            cut = _after_last_newline(fh)
            if cut < fh.seek(0, os.SEEK_END):
                fh.truncate(cut)
        names = self.columns[: self.n_keys]
        opts = pacsv.ConvertOptions(include_columns=names, column_types={n: pa.string() for n in names},
                                    strings_can_be_null=False)
        with open_file(self.path, "rb") as fh:
            table = pacsv.read_csv(fh, convert_options=opts,
                                   parse_options=pacsv.ParseOptions(newlines_in_values=True))
        keys = ["/".join(parts) for parts in zip(*(table.column(n).to_pylist() for n in names), strict=True)]
        self._file_keys = keys
        self.done = set(keys)
        self.rows = len(keys)
        self.stamps = bookkeeping.read_stamps(self.stamps_path)

    def reconcile(self, images: Sequence[ImageRef]) -> tuple[int, int]:
        """Drop the rows of images deleted or changed since they were written; ``(changed, vanished)``.

        The changed ones are no longer in :attr:`done`, so the run does them again.
        """
        changed, vanished = bookkeeping.stale(self.done, self.stamps, images)
        self.index = {r.key: i for i, r in enumerate(images)}
        kept_keys = [k for k in self._file_keys if k not in changed and k not in vanished]
        self.in_order = bookkeeping.in_discovery_order(kept_keys, self.index)
        self._file_keys = []
        if changed or vanished:
            drop = changed | vanished
            self._fh.close()
            self.rows = bookkeeping.drop_rows(self.path, self.n_keys, drop)
            self.done -= drop
            self.stamps = {k: v for k, v in self.stamps.items() if k in self.done}
            self._stamps_fh.close()
            bookkeeping.write_stamps(self.stamps_path, self.stamps)
            self._fh = _open_append(self.path)
            self._stamps_fh = _open_append(self.stamps_path)
            self.log(f"Resume: {len(changed)} image(s) changed since their rows were written (done again), "
                     f"{len(vanished)} no longer found (rows dropped)")
        if self.done:
            self.log(f"Resuming: {len(self.done)} image(s) already in {self.path.name}")
        return len(changed), len(vanished)

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
        cells = [_cells(a) for a in arrays]
        self._write(refs, "".join(",".join(row) + "\n" for row in zip(*cells, strict=True)).encode("utf-8"))

    def _key_columns(self, refs: Sequence[ImageRef]) -> list[list[str]]:
        return key_columns(self.n_keys, refs)

    def _write(self, refs: Sequence[ImageRef], data: bytes) -> None:
        _write_all(self._fh, data)  # the rows first, then which file versions they came from
        _write_all(self._stamps_fh, bookkeeping.stamp_lines(refs))
        self.rows += len(refs)
        self.done.update(r.key for r in refs)

    def close(self) -> None:
        for fh in (self._fh, self._stamps_fh):
            if not fh.closed:
                try:
                    os.fsync(fh.fileno())
                finally:
                    fh.close()

    def sort(self) -> None:
        """Put the rows in discovery order if resuming mixed it (images done again, failures retried)."""
        self.close()
        if not self.in_order:
            bookkeeping.reorder_rows(self.path, self.n_keys, self.index)
            self.in_order = True

    def discard(self) -> None:
        """Remove the partial files once the final table exists."""
        self.close()
        for p in (self.path, self.state_path, self.stamps_path):
            remove(p)


def _after_last_newline(fh) -> int:
    """Offset just after the file's last newline (0 if none), reading backwards in 64 kB blocks."""
    end = fh.seek(0, os.SEEK_END)
    while end > 0:
        start = max(0, end - (1 << 16))
        fh.seek(start)
        at = fh.read(end - start).rfind(b"\n")
        if at >= 0:
            return start + at + 1
        end = start
    return 0


def _open_append(path: Path) -> io.RawIOBase:
    """An unbuffered append-only file for ``path``, never through a link (see :func:`open_file`)."""
    return open_file(path, "ab", buffering=0)


def _write_all(fh: io.RawIOBase, data: bytes) -> None:
    """Write every byte on an unbuffered file (a short write continues; an error raises)."""
    view = memoryview(data)
    while view:
        view = view[fh.write(view) or 0:]


def key_columns(n_keys: int, refs: Sequence[ImageRef]) -> list[list[str]]:
    """The text cells of these rows: ``n_keys - 1`` levels, the file name, then any DICOM tag cells."""
    cols = [[r.levels[i] for r in refs] for i in range(n_keys - 1)]
    cols.append([r.filename for r in refs])
    cols.extend([r.tags[j] for r in refs] for j in range(len(refs[0].tags)))  # DICOM tag cells
    return cols


def csv_rows(text_columns: Sequence[Sequence[str]], blocks: Sequence[np.ndarray]) -> bytes:
    """CSV lines: the text cells (quoted as Arrow's CSV writer quotes strings), then the number blocks."""
    parts = [['"' + v.replace('"', '""') + '"' for v in col] for col in text_columns]
    for block in blocks:
        block = np.asarray(block)
        if block.dtype != np.float64:  # float64 blocks (fractal features) are kept as they are
            block = block.astype(np.float32, copy=False)
        parts.append(_format_rows(block))
    return "".join(",".join(row) + "\n" for row in zip(*parts, strict=True)).encode("utf-8")


def float_text(values: np.ndarray) -> pa.Array:
    """Numbers (1-D float array) as text, as Arrow's CSV writer formats them (shortest round-trip repr), except
    that an integral value keeps a decimal point: Arrow writes ``0``, pandas would read a column of such cells
    as int64, and MEDomics' tables (Python floats) read back as float64.  Only the finite integral cells that
    Arrow writes without an exponent change (``0`` → ``0.0``, ``-3`` → ``-3.0``); only they are touched."""
    text = pc.cast(pa.array(values), pa.string())
    whole = np.isfinite(values) & (values == np.trunc(values))
    if not whole.any():
        return text
    sub = text.filter(pa.array(whole))
    fixed = pc.if_else(pc.match_substring(sub, "e"), sub, pc.binary_join_element_wise(sub, ".0", ""))
    return pc.replace_with_mask(text, pa.array(whole), fixed)


def _cells(values: pa.Array) -> list[str]:
    """One column's CSV cells as Arrow's CSV writer writes them (strings quoted, nulls empty), numbers with
    :func:`float_text` (an integral float keeps its decimal point, so a prediction of exactly 1 reads as float)."""
    if pa.types.is_floating(values.type):
        text = float_text(values.to_numpy(zero_copy_only=False))
    elif pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        text = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
    else:
        text = pc.cast(values, pa.string())
    return pc.if_else(pc.is_null(values), "", text).to_pylist()


def _format_rows(block: np.ndarray) -> list[str]:
    """Each row of a 2-D float block as comma-separated text (:func:`float_text` formatting)."""
    n, k = block.shape
    if k == 0:
        return [""] * n
    text = float_text(np.ascontiguousarray(block).ravel())
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int64))
    return pc.binary_join(pa.LargeListArray.from_arrays(offsets, text), ",").to_pylist()
