"""Where a run writes, and why it may refuse to: links, and names Windows cannot create.

:func:`output_problems` is part of option validation (CLI, backend, page: the same words).  It
refuses, before any work:

* an output name Windows cannot create (``CON``, ``PRN``, ``AUX``, ``NUL``, ``COM0``–``COM9``,
  ``LPT0``–``LPT9`` with any extension, a name ending in a dot or a space, control characters or
  ``<>:"|?*``), and names so long that a side file (``<name>.partial.json``) would pass 255
  characters;
* a symbolic link as the output, any of its side files (``.partial``, ``.partial.json``, ``.json``,
  ``.errors.csv``, ``.unmatched.csv``, the ``.master.tmp`` of a master table), the saliency map
  folder, or any folder between the workspace and them.  radfeat never writes through a link
  (:mod:`radfeat.output.atomic` enforces it at write time as well).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

MAX_NAME = 200  # characters of an output file name: its longest side file must stay within 255
MAX_PATH = 4096  # characters of any path radfeat is given
SIDE_SUFFIXES = (".errors.csv", ".json", ".unmatched.csv")
_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
             *(f"COM{i}" for i in "0123456789¹²³"), *(f"LPT{i}" for i in "0123456789¹²³")}
_BAD_CHARS = re.compile(r'[\x00-\x1f<>:"|?*\\/]')


def name_problem(name: str) -> str | None:
    """Why a file name cannot be an output on every system, or None."""
    if len(name) > MAX_NAME:
        return f"File name is too long ({len(name)} characters; at most {MAX_NAME})"
    if name.split(".")[0].rstrip(" ").upper() in _RESERVED:
        return f"'{name}' is a reserved device name on Windows (CON, PRN, AUX, NUL, COM1…, LPT1…); choose another"
    if name.endswith((".", " ")):
        return "File name must not end with a dot or a space"
    if _BAD_CHARS.search(name):
        return "File name must not contain control characters or any of < > : \" | ? * \\ /"
    return None


def path_problem(path: Any, what: str) -> str | None:
    """A path that is too long or holds a NUL character (either would fail deep inside the OS)."""
    if isinstance(path, str) and len(path) > MAX_PATH:
        return f"{what} path is too long ({len(path)} characters; at most {MAX_PATH})"
    if isinstance(path, str) and "\x00" in path:
        return f"{what} path must not contain a NUL character"
    if isinstance(path, str) and any(len(part.encode("utf-8", "replace")) > 255 for part in re.split(r"[/\\]", path)):
        return f"{what} path has a name longer than 255 bytes, which no file system accepts"
    return None


def written_paths(opts: Any) -> tuple[list[Path], list[Path]]:
    """The files and the folders a run with ``opts`` may write (links not followed)."""
    from radfeat.extractors import registry

    out = opts.output_path()
    files = [out, out.with_name(out.name + ".partial"), out.with_name(out.name + ".partial.json"),
             out.with_name(out.name + ".master.tmp"), *(out.with_name(out.stem + s) for s in SIDE_SUFFIXES)]
    kind = registry.get(opts.type)
    folders = list(kind.output_folders(opts)) if kind is not None and kind.output_folders is not None else []
    return files, folders


def output_problems(opts: Any) -> list[tuple[str, str]]:
    """``(field, message)`` for every reason the output cannot be written safely (see the module doc)."""
    from radfeat.output.atomic import link_below

    field = "output" if opts.output else "filename"
    for value, label, key in ((opts.output, "Output", "output"), (opts.workspace, "Workspace", "workspace")):
        msg = path_problem(value, label)
        if msg:
            return [(key, msg)]
    try:
        out = opts.output_path()
        files, folders = written_paths(opts)
    except (OSError, ValueError, RuntimeError) as exc:
        return [(field, f"Output path cannot be used: {exc}")]
    msg = name_problem(out.name)
    if msg:
        return [(field, msg)]
    workspace = Path(opts.workspace).expanduser().resolve()
    for path in files + folders:
        root = workspace if path.is_relative_to(workspace) else path.parent
        link = link_below(path, root)
        if link is not None:
            return [(field, f"{link} is a symbolic link; radfeat never writes through links "
                            "(remove it or choose another name)")]
        if path in files and path.exists() and not path.is_file():
            return [(field, f"{path} exists and is not a file")]
    return []
