"""Interrupted runs found in the output folder, which the page offers to resume.

* the local engine's ``<output>.partial`` (finished rows) plus its ``.partial.json`` state;
* the Ray engine's ``<output>.ray-shards/`` folder: finished shards ``<k>.csv`` with their manifests
  ``<k>.json``, and ``state.json``.

Both states hold the options fingerprint, the columns and the options the run was started with
(:mod:`radfeat.output.partial`, :mod:`radfeat.output.shards`).  After a cancel, a crash or a restart of the
backend, these files are all that is left; the page lists them and offers "Resume" with the stored options
(the same options continue the run).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SUFFIX = ".partial"
SHARDS_SUFFIX = ".ray-shards"
_SHARD_STATE = "state.json"


def _lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 22), b""))


def _partial_table(entry: Path) -> tuple[Path, int, float, Path]:
    """Output, finished rows (complete lines after the header), modified time and state file."""
    return (entry.with_name(entry.name[: -len(SUFFIX)]), max(0, _lines(entry) - 1), entry.stat().st_mtime,
            entry.with_name(entry.name + ".json"))


def _shard_folder(entry: Path) -> tuple[Path, int, float, Path]:
    """Output, rows of the finished shards (a shard counts once its manifest is written), modified time and
    state file."""
    rows, mtime = 0, entry.stat().st_mtime
    for manifest in entry.glob("*.json"):
        shard = manifest.with_suffix(".csv")
        if manifest.stem.isdigit() and not shard.is_symlink() and shard.is_file():
            rows += _lines(shard)
            mtime = max(mtime, manifest.stat().st_mtime)
    return entry.with_name(entry.name[: -len(SHARDS_SUFFIX)]), rows, mtime, entry / _SHARD_STATE


def _found(entry: Path) -> tuple[Path, int, float, Path] | None:
    if entry.name.startswith(".") or entry.is_symlink():
        return None
    if entry.name.endswith(SUFFIX) and entry.is_file():
        return _partial_table(entry)
    if entry.name.endswith(SHARDS_SUFFIX) and (entry / _SHARD_STATE).is_file():
        return _shard_folder(entry)
    return None


def partial_runs(folder: Path) -> list[dict[str, Any]]:
    """One entry per interrupted run in ``folder`` (newest first); links and odd files are ignored."""
    runs = []
    if not folder.is_dir():
        return runs
    for entry in folder.iterdir():
        try:
            found = _found(entry)
            if found is None:
                continue
            output, rows, mtime, state_path = found
            state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else {}
        except (OSError, ValueError):
            continue
        options = state.get("options") if isinstance(state, dict) else None
        runs.append({"output": str(output), "filename": output.name, "options": options,
                     "rows_done": rows, "modified": datetime.fromtimestamp(mtime, tz=timezone.utc)
                     .isoformat(timespec="seconds").replace("+00:00", "Z"), "mtime": mtime,
                     "resumable": isinstance(options, dict)})
    runs.sort(key=lambda r: (-r["mtime"], r["filename"]))
    return runs
