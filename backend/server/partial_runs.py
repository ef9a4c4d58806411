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

from radfeat.output.shards import SHARDS_SUFFIX, STATE, kept_rows, shard_folder
from radfeat.output.tabular import count_lines

SUFFIX = ".partial"


def _partial_table(entry: Path) -> tuple[Path, int, float, Path]:
    """Output, finished rows (complete lines after the header), modified time and state file."""
    with open(entry, "rb") as fh:
        rows = max(0, count_lines(fh) - 1)
    return entry.with_name(entry.name[: -len(SUFFIX)]), rows, entry.stat().st_mtime, entry.with_name(entry.name + ".json")


def _shard_folder(entry: Path) -> tuple[Path, int, float, Path]:
    """Output, rows of the shards a resume keeps, modified time and state file."""
    rows, mtime = kept_rows(entry)
    return entry.with_name(entry.name[: -len(SHARDS_SUFFIX)]), rows, mtime, entry / STATE


def resumable(output: Path) -> bool:
    """Whether a stopped run left something to resume: the local engine's partial table or Ray's shards."""
    return output.with_name(output.name + SUFFIX).is_file() or (shard_folder(output) / STATE).is_file()


def _found(entry: Path) -> tuple[Path, int, float, Path] | None:
    if entry.name.startswith(".") or entry.is_symlink():
        return None
    if entry.name.endswith(SUFFIX) and entry.is_file():
        return _partial_table(entry)
    if entry.name.endswith(SHARDS_SUFFIX) and (entry / STATE).is_file():
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
