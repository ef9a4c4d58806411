"""What a catalog entry may say: a catalog never chooses where radfeat writes.

Catalogs come from ``models/catalog.json``, ``$RADFEAT_CATALOG`` (a hospital mirror — or a hostile
file) and ``$RADFEAT_HOME/user_weights.json`` (written by ``radfeat models add``, read back).  Every
entry is checked here before use:

* ``name``: letters, digits, ``.``, ``_``, ``-``, starting with a letter or digit, at most 64
  characters (it becomes part of export file names);
* ``file``: a plain file name of the same kind (no folder, no ``..``, no drive, at most 200
  characters, not a Windows device name), so the weights land in ``$RADFEAT_HOME/weights``;
* ``url``: ``http`` or ``https``; ``sha256``: 64 hex digits; ``size``, ``input_size``: whole numbers
  in range; ``labels``: strings; ``op_threshs``: numbers or null, one per label.

A malformed catalog raises :class:`CatalogError` with one line naming the file and the entry.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from radfeat.errors import CANNOT_READ, EXIT_INVALID, RadfeatError

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
FILE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,199}")
SHA_RE = re.compile(r"[0-9a-fA-F]{64}")
ARCHITECTURES = ("densenet121", "resnet50", "resnet101", "resnet-ae", "onnx")  # the ones radfeat runs today
ARCH_RE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}")


class CatalogError(RadfeatError, ValueError):
    """The catalog (or the user registry) cannot be used; the message is one line (exit 2, RPC -32004)."""

    exit_status = EXIT_INVALID
    rpc_code = CANNOT_READ


def check_name(name: object) -> str | None:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        return ("a weights name must start with a letter or digit and use only letters, digits, '.', '_' or '-' "
                "(at most 64)")
    return None


def check_file(file: object) -> str | None:
    from radfeat.output.paths import name_problem

    if not isinstance(file, str) or not FILE_RE.fullmatch(file) or ".." in file:
        return "'file' must be a plain file name (letters, digits, '.', '_', '+', '-'; no folders)"
    return name_problem(file)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _field_problems(raw: dict[str, Any]) -> list[str]:
    out = []
    url = raw.get("url")
    if url is not None and not (isinstance(url, str) and re.match(r"https?://[^\s/]+", url) and len(url) < 2048):
        out.append("'url' must be an http(s) address")
    sha = raw.get("sha256")
    if sha not in (None, "") and not (isinstance(sha, str) and SHA_RE.fullmatch(sha)):
        out.append("'sha256' must be 64 hexadecimal digits")
    for key, low, high in (("size", 1, 1 << 40), ("input_size", 8, 4096)):
        value = raw.get(key)
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and low <= value <= high):
            out.append(f"'{key}' must be a whole number between {low} and {high}")
    labels = raw.get("labels")
    if labels is not None and not (isinstance(labels, list) and len(labels) <= 100_000
                                   and all(isinstance(x, str) and len(x) < 256 for x in labels)):
        out.append("'labels' must be a list of names")
    thr = raw.get("op_threshs")
    if thr is not None and not (isinstance(thr, list) and all(t is None or _number(t) for t in thr)
                                and (not isinstance(labels, list) or len(thr) == len(labels))):
        out.append("'op_threshs' must be numbers (or null), one per label")
    arch = raw.get("architecture", "densenet121")
    if not (isinstance(arch, str) and ARCH_RE.fullmatch(arch)):
        out.append(f"'architecture' must be a short name such as {', '.join(ARCHITECTURES)}")
    for key in ("description", "source"):
        if raw.get(key) is not None and not isinstance(raw.get(key), str):
            out.append(f"'{key}' must be text")
    if raw.get("extra") is not None and not isinstance(raw.get("extra"), dict):
        out.append("'extra' must be an object")
    return out


def entry_problem(raw: object) -> str | None:
    """Why one catalog entry cannot be used, or None."""
    if not isinstance(raw, dict):
        return "an entry must be an object"
    problem = check_name(raw.get("name"))
    if problem:
        return f"{problem}, not {raw.get('name')!r}"[:300]
    problem = check_file(raw.get("file"))
    if problem:
        return f"'{raw['name']}': {problem}, not {raw.get('file')!r}"[:300]
    problems = _field_problems(raw)
    return f"'{raw['name']}': {problems[0]}" if problems else None


def check_catalog(raw: object, where: str | Path) -> dict[str, Any]:
    """The catalog document, checked; raises :class:`CatalogError` (one line) on the first problem."""
    if not isinstance(raw, dict) or not isinstance(raw.get("weights"), list) or not raw["weights"]:
        raise CatalogError(f"catalog {where}: expected an object with a non-empty 'weights' list")
    pathologies = raw.get("pathologies", [])
    if not isinstance(pathologies, list) or not all(isinstance(p, str) for p in pathologies):
        raise CatalogError(f"catalog {where}: 'pathologies' must be a list of names")
    for item in raw["weights"]:
        problem = entry_problem(item)
        if problem:
            raise CatalogError(f"catalog {where}: {problem}")
    default = raw.get("default")
    if default is not None and default not in {w["name"] for w in raw["weights"]}:
        raise CatalogError(f"catalog {where}: default {str(default)[:80]!r} is not one of its weights")
    return raw


def check_user_registry(raw: object, where: str | Path) -> dict[str, dict[str, Any]]:
    """``user_weights.json``: an object of entries keyed by their own name."""
    if not isinstance(raw, dict):
        raise CatalogError(f"registry {where}: expected an object of weight sets")
    for key, item in raw.items():
        problem = entry_problem(item)
        if problem is None and item.get("name") != key:
            problem = f"entry {key[:80]!r} is named {str(item.get('name'))[:80]!r}"
        if problem:
            raise CatalogError(f"registry {where}: {problem} (fix or delete that entry)")
    return raw
