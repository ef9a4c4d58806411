"""Finding the images: patient folders (and admission sub-folders) of JPG/PNG/DICOM files.

``depth`` N means images sit N folder levels below the input folder; the names of
those N folders become the ``level_1 … level_N`` columns.  Order is deterministic
(sorted names at every level).  Nothing disappears silently: every entry that is not
used — images at another depth, files that are not images, broken links, unreadable
folders, symlink loops — is listed in ``Discovery.skipped`` with its reason; hidden
files and operating-system clutter (``.DS_Store``, ``Thumbs.db``) are only counted.
:func:`is_image_file` is the one image predicate (the depth survey and the page reuse it).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from radfeat.pipeline.dicom import is_dicom
from radfeat.pipeline.names import shown

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
# Files nobody means as data: counted in one number, never listed one by one.
SYSTEM_FILES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r", "__macosx",
                          "$recycle.bin", "system volume information"})
BELOW_LEVELS = 16  # how far below the image folders discovery looks for images at the wrong depth


def is_ignored_name(name: str) -> bool:
    """Hidden entries and operating-system clutter (``.DS_Store``, ``Thumbs.db``, ``__MACOSX`` …)."""
    return name.startswith(".") or name.lower() in SYSTEM_FILES


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
    return is_image_kind(path)


def is_image_kind(path: str | os.PathLike[str]) -> bool:
    """JPG/PNG by extension, or DICOM (extension or preamble): the file-kind half of :func:`is_image_file`."""
    return os.path.basename(os.fspath(path)).lower().endswith(IMAGE_SUFFIXES) or is_dicom(path)


@dataclass(frozen=True)
class ImageRef:
    """One image and the folder names above it (as shown: see :mod:`radfeat.pipeline.names`)."""

    path: Path
    levels: tuple[str, ...]
    filename: str
    tags: tuple[str, ...] = field(default=(), compare=False)  # DICOM tag cells (--dicom-tags), after filename
    stamp: tuple[int, int] | None = field(default=None, compare=False)  # (size, mtime_ns) when discovered

    @property
    def key(self) -> str:
        """Stable identity within a dataset: ``level_1/…/level_N/filename``."""
        return "/".join((*self.levels, self.filename))


@dataclass
class Discovery:
    """The images found, and every entry that is not used with the reason (``skipped``).

    Hidden files and system clutter are only counted (``ignored``).
    """

    images: list[ImageRef] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path as shown, reason)
    ignored: int = 0
    folders: int = 0

    def overview(self) -> str:
        """What was skipped, in one line: ``3 × not a JPG or PNG image, 1 × broken link``."""
        kinds: dict[str, int] = {}
        for _, reason in self.skipped:
            kind = reason.split(" (")[0].split(";")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        return ", ".join(f"{n} × {kind}" for kind, n in sorted(kinds.items(), key=lambda kv: -kv[1]))

    @property
    def problems(self) -> list[tuple[str, str]]:  # the name earlier versions used
        return self.skipped


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
    """List the images ``depth`` folder levels below ``root`` (optionally only in ``select`` folders).

    Everything else that is not hidden is accounted for in ``skipped``: images at another depth, files
    that are not images, broken links, folders that cannot be read.  With ``select``, only the chosen
    folders (and what lies below them) are looked at.
    """
    root = Path(root).expanduser()
    result = Discovery()
    wanted = None if select is None else {s.strip("/") for s in select}
    walker = _Walker(root, depth, wanted, result)
    try:
        st = root.stat()
    except OSError as exc:
        result.skipped.append((shown(root), f"cannot open input folder ({exc.strerror or exc})"))
        return result
    walker.seen.add((st.st_dev, st.st_ino))
    walker.folder(root, ())
    if wanted is not None:
        for missing in sorted(wanted - walker.reached):
            result.skipped.append((missing, "selected folder not found at this depth"))
    return result


class _Walker:
    """One walk of the input tree, sorted names at every level."""

    def __init__(self, root: Path, depth: int, wanted: set[str] | None, result: Discovery) -> None:
        self.root, self.depth, self.wanted, self.result = root, depth, wanted, result
        self.seen: set[tuple[int, int]] = set()
        self.reached: set[str] = set()
        self.prefixes = None if wanted is None else {"/".join(w.split("/")[:i]) for w in wanted
                                                     for i in range(1, w.count("/") + 2)}

    def skip(self, path: str | Path, reason: str) -> None:
        self.result.skipped.append((shown(path), reason))

    def folder(self, path: Path, parts: tuple[str, ...]) -> None:
        level = len(parts)
        rel = "/".join(parts)
        if level == self.depth:
            if self.wanted is not None and rel not in self.wanted:
                return
            self.reached.add(rel)
            self.result.folders += 1
        elif level < self.depth and self.wanted is not None and level and rel not in self.prefixes:
            return
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:
            self.skip(path, f"cannot open folder ({exc.strerror or exc})")
            return
        levels = tuple(shown(p) for p in parts)  # the level cells, once per folder
        for entry in entries:
            if is_ignored_name(entry.name):
                self.result.ignored += 1
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                self.skip(entry.path, "broken link (its target does not exist)")
                continue
            except OSError as exc:
                self.skip(entry.path, f"cannot read ({exc.strerror or exc})")
                continue
            if stat.S_ISDIR(st.st_mode):
                self.subfolder(entry, st, parts)
            else:
                self.file(entry, st, parts, levels)

    def subfolder(self, entry: os.DirEntry, st: os.stat_result, parts: tuple[str, ...]) -> None:
        ident = (st.st_dev, st.st_ino)
        if ident in self.seen:
            self.skip(entry.path, "skipped: folder reached twice (symlink loop or duplicate link)")
            return
        if len(parts) >= self.depth + BELOW_LEVELS:
            self.skip(entry.path, f"folder more than {BELOW_LEVELS} levels below the image folders, not searched")
            return
        self.seen.add(ident)
        self.folder(Path(entry.path), (*parts, entry.name))

    def file(self, entry: os.DirEntry, st: os.stat_result, parts: tuple[str, ...], levels: tuple[str, ...]) -> None:
        level = len(parts)
        if level < self.depth and self.wanted is not None:
            return  # beside the chosen folders, not in them
        if not is_image_kind(entry.path):
            kind = os.path.splitext(entry.name)[1] or "no extension"
            self.skip(entry.path, f"not a JPG, PNG or DICOM image ({shown(kind)})")
        elif level != self.depth:
            self.skip(entry.path, f"image {level} folder level{'s' if level != 1 else ''} below the input; "
                                  f"this run reads images {self.depth} level{'s' if self.depth != 1 else ''} below")
        elif not stat.S_ISREG(st.st_mode):
            self.skip(entry.path, "not a regular file")
        else:
            self.result.images.append(ImageRef(Path(entry.path), levels, shown(entry.name),
                                               stamp=(st.st_size, st.st_mtime_ns)))
