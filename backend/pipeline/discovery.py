"""Finding the images: patient folders (and admission sub-folders) of JPG/PNG/DICOM files.

``depth`` N means images sit N folder levels below the input folder; the names of
those N folders become the ``level_1 … level_N`` columns.  Order is deterministic
(sorted names at every level), hidden entries are skipped, and folder problems
(unreadable folders, symlink loops) are reported instead of crashing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from radfeat.pipeline.dicom import is_dicom

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """The one rule for "is this an image radfeat reads", shared by discovery, the depth survey
    (:mod:`radfeat.pipeline.depths`) and the page's counts: a regular, non-hidden file that is a JPG/PNG/DICOM
    by extension (any case), or an extension-less (or UID-named, ``1.2.840.….7``) file with the DICOM preamble.
    """
    name = os.path.basename(os.fspath(path))
    if name.startswith("."):
        return False
    try:
        if not os.path.isfile(path):
            return False
    except OSError:
        return False
    return name.lower().endswith(IMAGE_SUFFIXES) or is_dicom(path)


@dataclass(frozen=True)
class ImageRef:
    """One image and the folder names above it."""

    path: Path
    levels: tuple[str, ...]
    filename: str
    tags: tuple[str, ...] = field(default=(), compare=False)  # DICOM tag cells (--dicom-tags), after filename

    @property
    def key(self) -> str:
        """Stable identity within a dataset: ``level_1/…/level_N/filename``."""
        return "/".join((*self.levels, self.filename))


@dataclass
class Discovery:
    images: list[ImageRef] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    folders: int = 0


def _subdirs(path: Path, problems: list[tuple[str, str]], seen: set[tuple[int, int]]) -> list[Path]:
    out: list[Path] = []
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as exc:
        problems.append((str(path), f"cannot list folder ({exc.strerror or exc})"))
        return out
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if not entry.is_dir(follow_symlinks=True):
                continue
            st = entry.stat(follow_symlinks=True)
        except OSError as exc:
            problems.append((entry.path, f"cannot read folder ({exc.strerror or exc})"))
            continue
        ident = (st.st_dev, st.st_ino)
        if ident in seen:
            problems.append((entry.path, "skipped: folder reached twice (symlink loop or duplicate link)"))
            continue
        seen.add(ident)
        out.append(Path(entry.path))
    return out


def _walk_levels(root: Path, depth: int, problems: list[tuple[str, str]]) -> list[Path]:
    seen: set[tuple[int, int]] = set()
    try:
        st = root.stat()
        seen.add((st.st_dev, st.st_ino))
    except OSError as exc:
        problems.append((str(root), f"cannot open input folder ({exc.strerror or exc})"))
        return []
    level = [root]
    for _ in range(depth):
        nxt: list[Path] = []
        for folder in level:
            nxt.extend(_subdirs(folder, problems, seen))
        level = nxt
    return level


def folders_at_depth(root: str | Path, depth: int) -> list[str]:
    """Relative (posix) paths of the folders ``depth`` levels below ``root``, sorted."""
    root = Path(root).expanduser()
    return [p.relative_to(root).as_posix() for p in _walk_levels(root, depth, [])]


def discover(root: str | Path, depth: int = 1, select: Iterable[str] | None = None) -> Discovery:
    """List the images ``depth`` folder levels below ``root`` (optionally only in ``select`` folders)."""
    root = Path(root).expanduser()
    result = Discovery()
    folders = _walk_levels(root, depth, result.problems)
    wanted = None if select is None else {s.strip("/") for s in select}
    for folder in folders:
        rel = folder.relative_to(root)
        if wanted is not None and rel.as_posix() not in wanted:
            continue
        result.folders += 1
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            result.problems.append((str(folder), f"cannot list folder ({exc.strerror or exc})"))
            continue
        for entry in entries:
            if not is_image_file(entry.path):
                continue
            result.images.append(ImageRef(Path(entry.path), rel.parts, entry.name))
    if wanted is not None:
        found = {f.relative_to(root).as_posix() for f in folders}
        for missing in sorted(wanted - found):
            result.problems.append((missing, "selected folder not found at this depth"))
    return result
