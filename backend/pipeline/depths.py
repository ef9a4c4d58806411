"""Where the images are: image counts per folder depth below an input folder.

A run reads the images exactly ``depth`` folder levels below its input folder, so a
wrong depth finds nothing and a dataset with images at several depths loses the ones
at the other depths.  :func:`survey` counts, level by level, the folders and the image
files (the same predicate as discovery, :func:`radfeat.pipeline.discovery.is_image_file`)
so that the page can show the counts and propose a depth, the RPC layer can refuse a
run that would find nothing, and the CLI can say what it leaves out.

The walk is bounded (``limit`` directory entries) and follows the same rules as
discovery: hidden entries are skipped and a folder reached twice (symlink loop) is
visited once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radfeat.pipeline.discovery import is_image_file

MAX_DEPTH = 6
ENTRY_LIMIT = 200_000


@dataclass
class DepthSurvey:
    """Image and folder counts per depth (0 = files in the input folder itself)."""

    root: Path
    images: dict[int, int] = field(default_factory=dict)
    folders: dict[int, int] = field(default_factory=dict)
    truncated: bool = False

    @property
    def total_images(self) -> int:
        return sum(self.images.values())

    @property
    def suggested_depth(self) -> int | None:
        """The depth (at least 1) holding the most images; the shallowest on a tie; None when there are none."""
        counts = [(n, -d) for d, n in self.images.items() if d >= 1 and n > 0]
        return -max(counts)[1] if counts else None

    def at(self, depth: int) -> int:
        return self.images.get(depth, 0)

    def others(self, depth: int) -> dict[int, int]:
        """Image counts at every depth except ``depth`` (only depths that have images)."""
        return {d: n for d, n in sorted(self.images.items()) if d != depth and n > 0}

    def to_json(self) -> dict[str, Any]:
        depths = sorted(set(self.images) | set(self.folders))
        return {
            "root": str(self.root),
            "depths": [{"depth": d, "images": self.images.get(d, 0), "folders": self.folders.get(d, 0)}
                       for d in depths],
            "suggested_depth": self.suggested_depth,
            "total_images": self.total_images,
            "truncated": self.truncated,
        }


def survey(root: str | Path, max_depth: int = MAX_DEPTH, limit: int = ENTRY_LIMIT) -> DepthSurvey:
    """Count image files and folders at each depth ``0 … max_depth`` below ``root``."""
    root = Path(root).expanduser()
    result = DepthSurvey(root)
    seen: set[tuple[int, int]] = set()
    try:
        st = root.stat()
        seen.add((st.st_dev, st.st_ino))
    except OSError:
        return result
    level, scanned = [root], 0
    for depth in range(max_depth + 1):
        result.folders[depth] = len(level)
        nxt: list[Path] = []
        for folder in level:
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except OSError:
                continue
            scanned += len(entries)
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if _is_new_dir(entry, seen):
                    nxt.append(Path(entry.path))
                elif is_image_file(entry.path):
                    result.images[depth] = result.images.get(depth, 0) + 1
            if scanned >= limit:
                result.truncated = True
                return result
        if not nxt:
            break
        level = nxt
    return result


def _is_new_dir(entry: os.DirEntry[str], seen: set[tuple[int, int]]) -> bool:
    try:
        if not entry.is_dir(follow_symlinks=True):
            return False
        st = entry.stat(follow_symlinks=True)
    except OSError:
        return False
    ident = (st.st_dev, st.st_ino)
    if ident in seen:
        return False
    seen.add(ident)
    return True


def _levels(n: int) -> str:
    return f"{n} folder level{'s' if n != 1 else ''}"


def counts_in_words(found: DepthSurvey) -> str:
    """``depth 1: 12 images, depth 2: 340 images`` (depth 0 is called "in the folder itself")."""
    parts = []
    for depth, n in sorted(found.images.items()):
        if n:
            where = "in the folder itself" if depth == 0 else f"depth {depth}"
            parts.append(f"{where}: {n} image{'s' if n != 1 else ''}")
    more = " (stopped counting early: a very large folder)" if found.truncated else ""
    return ", ".join(parts) + more


def no_images_message(root: str | Path, depth: int, found: DepthSurvey) -> str:
    """Why a run at ``depth`` finds nothing, and which depth would find the images."""
    where = f"{_levels(depth)} below {root}"
    if not found.total_images:
        return f"No images found {where} (nor at any depth up to {MAX_DEPTH})"
    best = found.suggested_depth
    if best is None:  # images only in the input folder itself
        return (f"No images found {where}; the images are in {root} itself — choose the folder above it "
                "as the input folder, with depth 1")
    return f"No images found {where}; images are at {counts_in_words(found)} — choose depth {best}"


def report_other_depths(root: str | Path, depth: int, log: Callable[[str], None],
                        found: DepthSurvey | None = None) -> DepthSurvey:
    """Log the images a run at ``depth`` leaves out because they sit at other depths; returns the survey."""
    found = found if found is not None else survey(root, max(MAX_DEPTH, depth))
    others = found.others(depth)
    if others:
        left = sum(others.values())
        what = "1 image at another depth is" if left == 1 else f"{left} images at other depths are"
        log(f"Note: {what} not part of this run (it reads depth {depth}); "
            f"counts per depth: {counts_in_words(found)}")
    return found
