"""Interrupted runs found in the output folder: ``<output>.partial`` plus its ``.partial.json`` state.

A run writes its finished rows to ``<output>.partial`` and, beside it, the options fingerprint,
the columns and the options it was started with (:class:`radfeat.output.partial.PartialTable`).
After a cancel, a crash or a restart of the backend, these files are all that is left; the
page lists them and offers "Resume" with the stored options (the same options continue the run).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SUFFIX = ".partial"


def _rows(path: Path) -> int:
    """Finished rows: complete lines after the header (a half-written last line does not count)."""
    with open(path, "rb") as fh:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 22), b""))
    return max(0, lines - 1)


def partial_runs(folder: Path) -> list[dict[str, Any]]:
    """One entry per partial table in ``folder`` (newest first); links and odd files are ignored."""
    runs = []
    if not folder.is_dir():
        return runs
    for entry in folder.iterdir():
        if not entry.name.endswith(SUFFIX) or entry.name.startswith(".") or entry.is_symlink() or not entry.is_file():
            continue
        state_path = entry.with_name(entry.name + ".json")
        try:
            state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else {}
            rows, mtime = _rows(entry), entry.stat().st_mtime
        except (OSError, ValueError):
            continue
        output = entry.with_name(entry.name[: -len(SUFFIX)])
        options = state.get("options") if isinstance(state, dict) else None
        runs.append({"output": str(output), "filename": output.name, "options": options,
                     "rows_done": rows, "modified": datetime.fromtimestamp(mtime, tz=timezone.utc)
                     .isoformat(timespec="seconds").replace("+00:00", "Z"), "mtime": mtime,
                     "resumable": isinstance(options, dict)})
    runs.sort(key=lambda r: (-r["mtime"], r["filename"]))
    return runs
