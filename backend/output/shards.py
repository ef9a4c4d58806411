"""Shards: the Ray engine's resumable partial result, assembled in discovery order at the end.

The images, in discovery order, are cut into shards of ``size`` consecutive images.  When every image of
a shard has its result, the shard's rows (the partial table's own text, in discovery order) are written to
``<output>.ray-shards/<k>.csv`` and then its manifest ``<k>.json`` (the hash of its image keys, byte
count, counts, failures), each atomically; a shard counts as finished only when both agree.  A run with
the same options keeps finished shards and computes the others; a shard with failed images is computed
again (a file missing on a worker may be there next time).  ``state.json`` holds the options
fingerprint (and the options, for the page's "Resume"): other options start over.  The final table is the header followed by the shards in order —
the same bytes as the local engine's partial table.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from radfeat.output.atomic import atomic_open, open_file, remove, write_text_atomic
from radfeat.output.tabular import count_lines
from radfeat.pipeline.discovery import ImageRef

SHARDS_SUFFIX = ".ray-shards"
STATE = "state.json"


def shard_folder(output: Path) -> Path:
    """Where a Ray run keeps the finished shards of ``output``."""
    return output.with_name(output.name + SHARDS_SUFFIX)


def kept_rows(folder: Path) -> tuple[int, float]:
    """Rows of the shards a resume keeps (manifest written, no failed image) and the newest manifest's time;
    read by the page's "Resume" list without the run's images."""
    rows, mtime = 0, folder.stat().st_mtime
    for manifest in folder.glob("*.json"):
        if not manifest.stem.isdigit():
            continue
        try:
            meta = json.loads(manifest.read_text())
            if isinstance(meta, dict) and not meta.get("errors"):
                with open_file(manifest.with_suffix(".csv"), "rb") as fh:  # never through a link
                    rows += count_lines(fh)
                mtime = max(mtime, manifest.stat().st_mtime)
        except (OSError, ValueError):
            continue  # a shard being written, or not ours: not kept
    return rows, mtime


def _keys_hash(refs: Sequence[ImageRef]) -> str:
    return hashlib.sha256("\n".join(r.key for r in refs).encode("utf-8")).hexdigest()


def _stamps(refs: Sequence[ImageRef]) -> list[list[int] | None]:
    """Each image's (size, mtime_ns) when discovered: a shard whose images changed since is done again."""
    return [list(r.stamp) if r.stamp is not None else None for r in refs]


def _changed(kept: Any, now: list[list[int] | None]) -> int:
    """How many images differ from the stamps kept in a manifest (all of them if it has none)."""
    if not isinstance(kept, list) or len(kept) != len(now):
        return len(now)
    return sum(1 for a, b in zip(kept, now, strict=True) if a != b)


class ShardStore:
    def __init__(self, output: Path, images: Sequence[ImageRef], size: int, columns: list[str],
                 fingerprint: dict[str, Any], resume: bool, log: Callable[[str], None],
                 options: dict[str, Any] | None = None) -> None:
        self.dir = shard_folder(output)
        # the assembled rows sit beside the output: publishing a CSV is a rename within one folder
        self.table = output.with_name(output.name + ".ray-table.csv")
        self.images = images
        self.size = size
        self.columns = columns
        self.count = (len(images) + size - 1) // size
        self.pending: dict[int, dict[int, tuple[str, str]]] = {}
        self.errors: dict[int, list[tuple[str, str]]] = {}
        self.log = log
        self.ok: dict[int, int] = {}
        self.changed = 0  # images replaced since their kept shard was written (their shard is done again)
        state = {"fingerprint": fingerprint, "columns": columns, "shard_size": size}
        if self.dir.is_symlink() or (self.dir.exists() and not self.dir.is_dir()):
            from radfeat.errors import RadfeatError

            raise RadfeatError(f"{self.dir} is not a folder radfeat made; remove it and run again")
        if resume and self._state_matches(state):
            self._keep_finished()
            if self.ok:
                log(f"Resuming: {self.images_done()} image(s) already in {len(self.ok)} shard(s) of {self.dir.name}")
        else:
            if self.dir.exists():
                log(f"Starting over: {self.dir.name} came from different options")
                self._clear()
            self.dir.mkdir(parents=True, exist_ok=True)
            # the options ride along (the page offers "Resume" with them); only the rest decides
            write_text_atomic(self.dir / STATE, json.dumps({**state, "options": options}, indent=1, default=str))

    # -- resume ------------------------------------------------------------------------------------------
    def _state_matches(self, state: dict[str, Any]) -> bool:
        try:
            kept = json.loads((self.dir / STATE).read_text())
        except (OSError, ValueError):
            return False
        return isinstance(kept, dict) and {k: kept.get(k) for k in state} == json.loads(json.dumps(state))

    def _clear(self) -> None:
        """Remove what an earlier run left (only our own file names)."""
        for p in self.dir.iterdir():
            if p.is_file() and not p.is_symlink() and (p.name == STATE or p.stem.isdigit()):
                p.unlink()

    def _keep_finished(self) -> None:
        for k in range(self.count):
            try:
                meta = json.loads((self.dir / f"{k}.json").read_text())
                size = (self.dir / f"{k}.csv").stat().st_size
            except (OSError, ValueError):
                continue
            refs = self.refs(k)
            if meta.get("keys") != _keys_hash(refs) or meta.get("bytes") != size or meta.get("errors"):
                continue
            changed = _changed(meta.get("stamps"), _stamps(refs))
            if changed:
                self.changed += changed
                continue
            self.ok[k] = int(meta["ok"])
            self.errors[k] = []
        if self.changed:
            self.log(f"Resume: {self.changed} image(s) changed since their rows were written (their shards are "
                     "done again)")

    def refs(self, k: int) -> Sequence[ImageRef]:
        return self.images[k * self.size:(k + 1) * self.size]

    def todo(self) -> list[int]:
        """Positions (in discovery order) of the images still to compute."""
        return [pos for k in range(self.count) if k not in self.ok
                for pos in range(k * self.size, min((k + 1) * self.size, len(self.images)))]

    def images_done(self) -> int:
        return sum(len(self.refs(k)) for k in self.ok)

    # -- results -----------------------------------------------------------------------------------------
    def add(self, pos: int, text: str, error: str) -> bool:
        """Record one image's rows (``text``) or failure; write its shard when complete.  False: a repeat."""
        k = pos // self.size
        if k in self.ok:
            return False
        got = self.pending.setdefault(k, {})
        if pos in got:
            return False
        got[pos] = (text, error)
        if len(got) == len(self.refs(k)):
            self._write(k, self.pending.pop(k))
        return True

    def _write(self, k: int, got: dict[int, tuple[str, str]]) -> None:
        rows = [got[pos] for pos in sorted(got)]
        data = "".join(text for text, _ in rows).encode("utf-8")
        errors = [(str(self.images[pos].path), err) for pos, (_, err) in sorted(got.items()) if err]
        ok = sum(1 for text, err in rows if not err and text)
        with atomic_open(self.dir / f"{k}.csv", "wb") as fh:
            fh.write(data)
        meta = {"keys": _keys_hash(self.refs(k)), "stamps": _stamps(self.refs(k)), "bytes": len(data), "ok": ok,
                "errors": errors}
        write_text_atomic(self.dir / f"{k}.json", json.dumps(meta))
        self.ok[k] = ok
        self.errors[k] = errors

    def all_errors(self) -> list[tuple[str, str]]:
        return [e for k in sorted(self.errors) for e in self.errors[k]]

    def complete(self) -> bool:
        return len(self.ok) == self.count

    def assemble(self) -> Path:
        """Header + every shard in order, as one CSV (the partial table's bytes); returns its path."""
        path = self.table
        with atomic_open(path, "wb") as out:  # the safe writer: no link followed, fsynced, renamed in place
            out.write((",".join(self.columns) + "\n").encode("utf-8"))
            for k in range(self.count):
                with open_file(self.dir / f"{k}.csv", "rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        return path

    def discard(self) -> None:
        remove(self.table)  # gone already when a CSV table was renamed from it
        shutil.rmtree(self.dir, ignore_errors=True)
