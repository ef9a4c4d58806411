"""Resume bookkeeping: which version of each image a row of the partial table came from.

Beside ``<output>.partial`` radfeat keeps ``<output>.partial.files``, one JSON line per finished
image, ``[key, size, mtime_ns]``, written (and flushed) after the image's rows.  A resumed run
compares them with the files it finds now: an image deleted since its row was written has its
rows dropped, an image whose size or modification time changed (replaced, edited, re-exported)
is done again, and a row without a line (a crash between the two writes) is done again too.
Nothing of this goes into the table's columns.

The partial table is a CSV whose text cells are always quoted (``"`` doubled inside) and whose
numbers never contain quotes, so a record ends at the first newline after an even number of
quotes: :func:`records` splits it without parsing numbers, and kept rows are copied byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from radfeat.output.atomic import atomic_open, open_file
from radfeat.pipeline.discovery import ImageRef

Stamp = tuple[int, int]


def stamps_path(partial: Path) -> Path:
    return partial.with_name(partial.name + ".files")


def read_stamps(path: Path) -> dict[str, Stamp]:
    """``key → (size, mtime_ns)``; a half-written last line (crash mid-write) is ignored."""
    stamps: dict[str, Stamp] = {}
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return stamps
    for line in data.split(b"\n"):
        try:
            key, size, mtime = json.loads(line)
            stamps[str(key)] = (int(size), int(mtime))
        except (ValueError, TypeError):
            continue
    return stamps


def stamp_lines(refs: Iterable[ImageRef]) -> bytes:
    seen: dict[str, ImageRef] = {r.key: r for r in refs}  # saliency listings repeat an image per map
    return b"".join((json.dumps([k, *r.stamp]) + "\n").encode() for k, r in seen.items() if r.stamp is not None)


def records(fh: io.BufferedReader) -> Iterator[bytes]:
    """The raw records of a radfeat partial CSV (quoted newlines inside a record are kept)."""
    pending = b""
    for line in fh:
        pending += line
        if pending.count(b'"') % 2 == 0:
            yield pending
            pending = b""
    if pending:
        yield pending


def record_key(record: bytes, n_keys: int) -> str:
    cells = next(csv.reader(io.StringIO(record.decode("utf-8"), newline="")), [])
    return "/".join(cells[:n_keys])


def stale(done: set[str], stamps: dict[str, Stamp], images: Sequence[ImageRef]) -> tuple[set[str], set[str]]:
    """``(changed, vanished)``: finished keys whose file changed (or has no stamp), and keys no longer found."""
    now = {r.key: r.stamp for r in images}
    vanished = {k for k in done if k not in now}
    changed = {k for k in done if k in now and stamps.get(k) != now[k]}
    return changed, vanished


def drop_rows(partial: Path, n_keys: int, drop: set[str]) -> int:
    """Rewrite ``partial`` without the rows of ``drop`` (header and other rows byte for byte); rows kept."""
    kept = 0
    with open_file(partial, "rb") as fin, atomic_open(partial, "wb") as out:
        out.write(fin.readline())
        for rec in records(fin):
            if record_key(rec, n_keys) not in drop:
                out.write(rec)
                kept += 1
    return kept


def in_discovery_order(file_keys: Sequence[str], index: dict[str, int]) -> bool:
    """Whether rows with these keys (file order) are the first images in discovery order, in that order.

    Only then do the rows still to come, appended in discovery order, give the table an
    uninterrupted run writes.
    """
    last, seen = -1, set()
    for key in file_keys:
        i = index.get(key, -1)
        if i < last:
            return False
        last = i
        seen.add(i)
    return len(seen) == last + 1


def reorder_rows(partial: Path, n_keys: int, index: dict[str, int]) -> None:
    """Rewrite ``partial`` with its rows in discovery order (stable: an image's several rows keep theirs)."""
    spans: list[tuple[int, int, int]] = []
    with open_file(partial, "rb") as fin:
        header = fin.readline()
        offset = len(header)
        for rec in records(fin):
            spans.append((index.get(record_key(rec, n_keys), len(index)), offset, len(rec)))
            offset += len(rec)
        spans.sort(key=lambda s: s[0])
        with atomic_open(partial, "wb") as out:
            out.write(header)
            for _, start, length in spans:
                fin.seek(start)
                out.write(fin.read(length))


def write_stamps(path: Path, stamps: dict[str, Stamp]) -> None:
    with atomic_open(path, "wb") as out:
        out.write(b"".join((json.dumps([k, *v]) + "\n").encode() for k, v in stamps.items()))
