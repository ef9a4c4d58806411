"""Offline installs: register weight files (and their ONNX exports) found in a folder.

``radfeat models import FOLDER`` is for machines that never reach the internet.  On a
connected machine, download TorchXRayVision's weight files (or run ``radfeat models
fetch``/``export`` there), carry them over on a disk, and import the folder:

* every file below ``FOLDER`` whose *file name* is the ``file`` of a catalog entry is
  a candidate for that entry (so a copied ``$RADFEAT_HOME``, a ``~/.torchxrayvision/
  models_data`` folder or a flat folder of downloads all work);
* when the catalog knows the entry's sha256 (or size) the file must match it, otherwise
  it is opened with radfeat's restricted loader and must be a TorchXRayVision network of
  the entry's architecture with as many outputs as the entry has labels — its sha256 is
  printed so it can be pinned in a hospital catalog (``$RADFEAT_CATALOG``);
* accepted files are copied into ``$RADFEAT_HOME/weights`` under their catalog name,
  atomically; a file already there with the same content is left alone;
* ONNX exports found beside the weights are **not** copied (a file name proves nothing about what
  a graph computes): with torch installed the imported weights are exported and checked here, without
  torch the export is left out with a message (see :func:`_import_exports`).

Nothing here touches the network.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from radfeat.errors import InvalidInput
from radfeat.output.atomic import atomic_path
from radfeat.weights.catalog import Catalog, WeightSet
from radfeat.weights.digest import sha256_file
from radfeat.weights.export import onnx_path, weights_sha256

IMPORTED = "imported"
PRESENT = "already present"
REJECTED = "rejected"


class FolderError(InvalidInput, ValueError):
    """The folder to import from does not exist."""


@dataclass
class ImportResult:
    """What happened to one file found in the folder."""

    name: str
    source: Path
    status: str  # IMPORTED, PRESENT or REJECTED
    sha256: str = ""
    message: str = ""


@dataclass
class ImportReport:
    folder: Path
    results: list[ImportResult] = field(default_factory=list)
    exports: list[Path] = field(default_factory=list)  # ONNX exports made from the imported weights

    @property
    def imported(self) -> list[ImportResult]:
        return [r for r in self.results if r.status == IMPORTED]

    @property
    def rejected(self) -> list[ImportResult]:
        return [r for r in self.results if r.status == REJECTED]

    @property
    def exit_code(self) -> int:
        """0 when at least one weight set is usable and nothing was rejected; 1 otherwise."""
        ok = [r for r in self.results if r.status in (IMPORTED, PRESENT)]
        return 0 if ok and not self.rejected else 1


def _walk(folder: Path) -> Iterator[Path]:
    """Every regular file below ``folder`` (symbolic links to folders are not followed)."""
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            yield Path(root) / name


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _verify(wset: WeightSet, path: Path, sha: str) -> str | None:
    """Why ``path`` cannot be ``wset``'s weights, or None when it can."""
    if wset.size and path.stat().st_size != wset.size:
        return f"size {path.stat().st_size} bytes, the catalog expects {wset.size}"
    if wset.sha256:
        return None if sha == wset.sha256.lower() else f"sha256 {sha} does not match the catalog's {wset.sha256}"
    # No checksum to compare with: prove it is a TorchXRayVision network of the entry's architecture and
    # output count, with radfeat's restricted loader (nothing in the file is run).
    from radfeat.weights.architectures import detect_architecture, strip_prefix  # torch: only to read a file
    from radfeat.weights.checkpoint import CheckpointError, load_checkpoint

    try:
        ckpt = load_checkpoint(path, None)
        arch = detect_architecture(ckpt.state_dict)
    except CheckpointError as exc:
        return str(exc)
    if arch != wset.architecture:
        return f"a {arch} checkpoint; '{wset.name}' is a {wset.architecture}"
    state = strip_prefix(ckpt.state_dict, "model.")
    head = state.get("classifier.weight", state.get("fc.weight"))
    if wset.labels and head is not None and int(head.shape[0]) != len(wset.labels):
        return f"the checkpoint has {int(head.shape[0])} outputs, '{wset.name}' has {len(wset.labels)} labels"
    return None


def import_folder(folder: Path | str, *, log: Callable[[str], None] = print,
                  catalog: Catalog | None = None) -> ImportReport:
    """Register every catalog weight file found below ``folder``; see the module docstring.

    Raises ``ValueError`` when ``folder`` is not a folder.  Files are rejected (reported, not
    raised) when they fail verification; a rejected file never replaces one already installed.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FolderError(f"Not a folder: {folder}")
    return import_paths([folder], log=log, catalog=catalog)


def import_paths(paths: Iterable[Path | str], *, log: Callable[[str], None] = print,
                 catalog: Catalog | None = None) -> ImportReport:
    """:func:`import_folder` for a mix of folders (searched recursively) and single files.

    A file counts only when its name is a catalog entry's ``file`` (or an ONNX export's); the
    page's import button and ``radfeat models import`` share this.
    """
    paths = [Path(p).expanduser() for p in paths]
    catalog = catalog or Catalog()
    by_file = {wset.file: wset for wset in catalog.entries() if wset.source == "catalog"}
    report = ImportReport(paths[0] if len(paths) == 1 else Path(os.path.commonpath(paths)) if paths else Path("."))
    onnx_found: dict[str, Path] = {}
    chosen: dict[str, str] = {}  # weight set name -> sha256 of the accepted file
    files = (f for p in paths for f in (_walk(p) if p.is_dir() else [p]))
    for path in files:
        if path.suffix == ".onnx":
            onnx_found.setdefault(path.name, path)
            continue
        wset = by_file.get(path.name)
        if wset is None or not path.is_file():  # a dangling link, a FIFO (would hang), a device: not weights
            continue
        _import_file(wset, path, chosen, report, log)

    report.exports = _import_exports(catalog, chosen, onnx_found, log)
    where = ", ".join(str(p) for p in paths)
    if not report.results:
        log(f"No weight files found in {where}. Expected file names, one per weight set:")
        for wset in by_file.values():
            log(f"  {wset.file}  ({wset.name})")
    else:
        log(f"{len(report.imported)} imported, "
            f"{len([r for r in report.results if r.status == PRESENT])} already present, "
            f"{len(report.rejected)} rejected, {len(report.exports)} ONNX export(s) made")
    return report


def _import_file(wset: WeightSet, path: Path, chosen: dict[str, str], report: ImportReport,
                 log: Callable[[str], None]) -> None:
    """Verify one candidate file for ``wset`` and copy it into the home folder (atomically)."""
    sha = sha256_file(path)
    if wset.name in chosen:  # the same file twice (e.g. a copy in two sub-folders)
        if sha != chosen[wset.name]:
            log(f"{wset.name}: ignoring {path}: a different file of that name was already imported")
        return
    problem = _verify(wset, path, sha)
    if problem:
        report.results.append(ImportResult(wset.name, path, REJECTED, sha, problem))
        log(f"{wset.name}: rejected {path}: {problem}")
        return
    chosen[wset.name] = sha
    dest = wset.path
    if dest.is_file() and (_same_file(dest, path) or weights_sha256(wset) == sha):
        report.results.append(ImportResult(wset.name, path, PRESENT, sha))
        log(f"{wset.name}: already installed (sha256 {sha})")
        return
    replaced = dest.is_file()
    with atomic_path(dest) as tmp:
        shutil.copyfile(path, tmp)
    weights_sha256(wset)  # cache the digest beside the file (export keys on it)
    note = "" if wset.sha256 else " — no checksum in the catalog; pin it with $RADFEAT_CATALOG if you like"
    report.results.append(ImportResult(wset.name, path, IMPORTED, sha, "replaced" if replaced else ""))
    log(f"{wset.name}: {'replaced the installed file with' if replaced else 'imported'} {path.name} "
        f"(sha256 {sha}){note}")


def _import_exports(catalog: Catalog, chosen: dict[str, str], onnx_found: dict[str, Path],
                    log: Callable[[str], None]) -> list[Path]:
    """ONNX exports found beside the weights are never copied as they are.

    An export's file name says which weights it came from, but its content could compute anything
    (a tampered graph gives the same prediction for every image).  With torch installed the weights
    just imported are exported again here, and checked against TorchXRayVision on a probe batch as
    every export is; without torch an export cannot be checked against its weights, so it is not
    imported (install ``radfeat[export]`` on this machine, or copy a whole ``$RADFEAT_HOME`` you trust).
    """
    import importlib.util

    from radfeat.weights.export import export, is_exported

    made = []
    have_torch = importlib.util.find_spec("torch") is not None
    for name, sha in chosen.items():
        wset = catalog.get(name)
        src = onnx_found.get(onnx_path(wset, sha).name)
        if src is None:
            continue
        if not have_torch:
            log(f"{name}: ONNX export {src.name} not imported: without torch it cannot be checked against its "
                "weights (install radfeat[export] to export here)")
            continue
        if is_exported(wset):
            log(f"{name}: ignoring {src.name}: this machine already has its own checked export")
            continue
        log(f"{name}: not copying {src.name} (an export is not trusted by its name); exporting from the "
            "imported weights instead")
        made.append(export(wset, log=log).path)
    return made


def cli_import(folder: str) -> int:
    """``radfeat models import FOLDER``: import, print a line per file, return the exit status.

    ``ValueError`` (not a folder) propagates for the CLI's usage-error handling; a file that cannot
    be read or written is reported as one line and exit status 1.
    """
    import sys

    try:
        return import_folder(Path(folder)).exit_code
    except OSError as exc:
        print(f"radfeat: error: {exc}", file=sys.stderr)
        return 1
