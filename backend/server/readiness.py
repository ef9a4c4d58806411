"""Readiness: options that are valid but cannot run now, said before the user presses Extract.

Three conditions, each an entry ``{field, code, message, actions, …}``:

* ``weights_missing`` — the chosen weights file is not in ``$RADFEAT_HOME``; ``actions`` say what
  the page may offer (``download`` when the weight set has a URL — the page confirms with
  ``probe_weights``, this module never touches the network — and ``import``);
* ``no_images`` — nothing at the chosen folder depth; the message names the depth where the
  images are and the entry carries ``suggested_depth`` and the counts per depth;
* ``output_exists`` — the table would replace an existing one; ``suggested_filename`` is a free name.
  It blocks ``start_extraction`` unless the options say ``overwrite: true``.

The depth survey of a folder is kept for a few seconds: the page validates on every change.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from radfeat.options import ExtractOptions, Problem, resolve_weights
from radfeat.pipeline.depths import DepthSurvey, no_images_message, survey
from radfeat.weights.availability import usable_default

SURVEY_TTL_S = 5.0
_surveys: dict[tuple[str, int], tuple[float, DepthSurvey]] = {}
_surveys_lock = threading.Lock()


def cached_survey(root: Path, max_depth: int) -> DepthSurvey:
    key = (str(root), max_depth)
    now = time.monotonic()
    with _surveys_lock:
        hit = _surveys.get(key)
        if hit is not None and now - hit[0] < SURVEY_TTL_S:
            return hit[1]
    found = survey(root, max_depth)
    with _surveys_lock:
        if len(_surveys) > 32:
            _surveys.clear()
        _surveys[key] = (now, found)
    return found


def free_filename(path: Path) -> str:
    """``name.csv`` → ``name_2.csv`` (or the next number) that does not exist yet in the same folder."""
    stem, suffix = path.stem, path.suffix
    base = stem.rsplit("_", 1)[0] if stem.rsplit("_", 1)[-1].isdigit() and "_" in stem else stem
    n = 2
    while (path.parent / f"{base}_{n}{suffix}").exists() or (path.parent / f"{base}_{n}{suffix}.partial").exists():
        n += 1
    return f"{base}_{n}{suffix}"


def _weights_entry(opts: ExtractOptions) -> dict[str, Any] | None:
    try:
        wset = resolve_weights(opts)
    except (KeyError, ValueError):
        return None  # already a problem of the options
    if wset is None or wset.downloaded:
        return None
    if wset.url:
        size = f" (about {wset.size / 1e6:.0f} MB)" if wset.size else ""
        how = f"download them{size} or import the weight file"
        actions = ["download", "import"]
    else:
        how, actions = "import the weight file", ["import"]
    return {"field": "weights", "code": "weights_missing", "blocking": True, "name": wset.name, "size": wset.size, "actions": actions,
            "message": f"The weights '{wset.name}' are not on this machine; {how}"}


def _images_entry(opts: ExtractOptions, fresh: bool) -> tuple[dict[str, Any] | None, DepthSurvey | None]:
    root = Path(opts.input)
    if not root.is_dir() or not isinstance(opts.depth, int) or opts.depth < 1:
        return None, None
    found = (survey if fresh else cached_survey)(root, max(6, opts.depth))
    if found.at(opts.depth) > 0 or (found.truncated and found.suggested_depth is None):
        return None, found
    best = found.suggested_depth
    return {"field": "depth" if best else "input", "code": "no_images", "blocking": True, "actions": ["change_depth"] if best else [],
            "message": no_images_message(root, opts.depth, found), "suggested_depth": best,
            "depths": found.to_json()["depths"]}, found


def _output_entry(opts: ExtractOptions, overwrite: bool) -> dict[str, Any] | None:
    out = opts.output_path()
    if not out.is_file():
        return None
    return {"field": "filename", "code": "output_exists", "actions": ["overwrite", "rename"],
            "blocking": not overwrite, "suggested_filename": free_filename(out),
            "message": f"{out.name} already exists in {out.parent}; choose another name or replace it"}


def check(opts: ExtractOptions | None, problems: list[Problem], overwrite: bool = False,
          fresh: bool = False) -> dict[str, Any]:
    """``{ready, readiness, default_weights, depth_survey}`` for options already checked by validation.

    ``fresh``: count the images now (a run about to start) instead of using a survey a few seconds old.
    """
    entries: list[dict[str, Any]] = []
    found = None
    if opts is not None:
        bad = {p.field for p in problems}
        if not bad & {"type", "weights"}:
            entries.append(_weights_entry(opts))
        if not bad & {"input", "depth", "select"}:
            entry, found = _images_entry(opts, fresh)
            entries.append(entry)
        if not bad & {"filename", "output", "format", "workspace"}:
            entries.append(_output_entry(opts, overwrite))
    entries = [e for e in entries if e is not None]
    default = None
    kind = getattr(opts, "type", None)
    if opts is not None and isinstance(kind, str):
        default = usable_default(kind)
    blocking = [e for e in entries if e.get("blocking", True)]
    return {"ready": not problems and not blocking, "readiness": entries, "default_weights": default,
            "depth_survey": None if found is None else found.to_json()}
