"""The JSON-RPC methods of the local backend (the bodies behind ``POST /rpc``).

Parameters are typed (the dispatcher in :mod:`radfeat.server.rpc` checks them); the methods and
their results are listed in README, "JSON-RPC methods".  Failures are :class:`radfeat.errors.RadfeatError`
subclasses or :class:`~radfeat.server.rpc.RpcError`, which the dispatcher turns into error objects.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from radfeat import __version__
from radfeat.errors import Problem, problem_dicts
from radfeat.extractors import registry
from radfeat.options import ExtractOptions, weights_label
from radfeat.output.dates import inspect_csv
from radfeat.output.paging import OffsetError, read_page
from radfeat.pipeline.discovery import folders_at_depth
from radfeat.pipeline.guard import OutputBusy, is_held
from radfeat.pipeline.images import ImageError, thumbnail_png
from radfeat.server.jobs import LOG_SHOWN, JobManager
from radfeat.server.page_options import prepare_options
from radfeat.server.rpc import CANNOT_READ, INVALID_OPTIONS, INVALID_PARAMS, NOT_FOUND, RpcError
from radfeat.server.security import PathPolicy
from radfeat.weights.catalog import Catalog
from radfeat.weights.export import is_exported
from radfeat.weights.features import feature_family

log = logging.getLogger("radfeat.server")

TABLE_SUFFIXES = {".csv", ".parquet", ".arff"}
SIDECAR_SUFFIXES = (".errors.csv", ".unmatched.csv", ".partial.csv", ".skipped.csv")
MAX_TABLE_PAGE = 1000
MAX_DEPTH = 32

METHODS = ["list_folders", "list_weights", "list_types", "validate_options", "inspect_dates", "start_extraction",
           "job_status", "cancel_job", "list_jobs", "read_table", "list_files", "thumbnail", "version"]


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _provenance_context(path: str) -> dict[str, Any]:
    """What the page needs to label a table it did not produce: its weights, input folder and depth."""
    try:
        prov = json.loads(Path(path).read_text(encoding="utf-8"))
        opts = prov.get("options") or {}
        return {"weights": (prov.get("weights") or {}).get("name"), "input": opts.get("input"),
                "depth": opts.get("depth")}
    except (OSError, ValueError, AttributeError):
        return {"weights": None, "input": None, "depth": None}


class Api:
    """The JSON-RPC methods.  Parameters are typed; README, "JSON-RPC methods", has the table."""

    def __init__(self, policy: PathPolicy, jobs: JobManager):
        self.policy = policy
        self.jobs = jobs

    # -- options -------------------------------------------------------------
    def _prepare(self, raw: dict[str, Any]) -> tuple[ExtractOptions | None, list[Problem]]:
        """Options from the page -> checked :class:`ExtractOptions` and every problem (CLI words + paths)."""
        return prepare_options(raw, self.policy)

    def _output_path(self, opts: ExtractOptions | None, problems: list[Problem]) -> str | None:
        if opts is None or any(p.field in ("filename", "output", "format", "workspace") for p in problems):
            return None
        try:
            return str(opts.output_path())
        except (TypeError, ValueError):
            return None

    # -- methods -------------------------------------------------------------
    def list_folders(self, root: str, depth: int = 1) -> dict[str, Any]:
        """Folders ``depth`` levels below ``root`` (relative posix paths); ``root`` becomes a chosen folder."""
        if not 1 <= depth <= MAX_DEPTH:
            raise RpcError(INVALID_PARAMS, f"Parameter 'depth' of list_folders must be between 1 and {MAX_DEPTH}",
                           {"parameter": "depth"})
        path = self.policy.resolve(root)
        if not path.is_dir():
            raise RpcError(NOT_FOUND, f"Folder not found: {root}", {"path": root})
        folders = list(folders_at_depth(path, depth))
        self.policy.choose(path)
        return {"root": str(path), "depth": depth, "folders": folders, "count": len(folders)}

    def list_weights(self) -> dict[str, Any]:
        """Every weight set with its labels and whether it is downloaded and exported to ONNX."""
        cat = Catalog()
        weights = []
        for wset in cat.entries():
            try:
                exported = bool(is_exported(wset))
            except Exception:  # a broken cache must not hide the list
                log.warning("is_exported(%s) failed", wset.name, exc_info=True)
                exported = False
            weights.append({
                "name": wset.name,
                "description": wset.description,
                "labels": list(wset.labels),
                "trained_labels": list(wset.trained_labels),
                "downloaded": bool(wset.downloaded),
                "exported": exported,
                "size": wset.size,
                "source": wset.source,
                "input_size": wset.input_size,
                "architecture": wset.architecture,
                "type": registry.kind_of(wset.architecture),
                **feature_family(wset),  # the features it writes, named and counted for the page
            })
        return {"default": cat.default, "weights": weights}

    def list_types(self) -> dict[str, Any]:
        """Every extraction type: label, description, weights, default file name, columns and options."""
        return registry.describe_types(Catalog().default)

    def validate_options(self, options: dict) -> dict[str, Any]:
        """Every problem with ``options`` (same words as the CLI) and where the table would be written."""
        opts, problems = self._prepare(options)
        return {"valid": not problems, "problems": problem_dicts(problems),
                "output_path": self._output_path(opts, problems)}

    def inspect_dates(self, path: str, sample: int = 5) -> dict[str, Any]:
        """Columns, row count and first rows of a dates CSV; the file becomes a chosen path."""
        if not 0 <= sample <= 100:
            raise RpcError(INVALID_PARAMS, "Parameter 'sample' of inspect_dates must be between 0 and 100",
                           {"parameter": "sample"})
        resolved = self.policy.resolve(path)
        if not resolved.is_file():
            raise RpcError(NOT_FOUND, f"File not found: {path}", {"path": path})
        try:
            info = inspect_csv(resolved, sample=sample)
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise RpcError(CANNOT_READ, f"Cannot read the dates CSV {resolved.name}: {exc}", {"path": path}) from None
        self.policy.choose(resolved)
        return {**dict(info), "path": str(resolved)}

    def start_extraction(self, options: dict) -> dict[str, Any]:
        """Start a job (returns at once); invalid options: -32000 with ``data.problems``; busy: -32003."""
        opts, problems = self._prepare(options)
        if problems or opts is None:
            words = "; ".join(p.message for p in problems)
            raise RpcError(INVALID_OPTIONS, f"Invalid options: {words}", {"problems": problem_dicts(problems)})
        weights = weights_label(opts)  # the weight set's name, or the type (fractal) when it uses none
        output = str(opts.output_path())
        self.policy.choose(opts.input)
        if opts.master_table is not None and opts.master_table.dates_csv:
            self.policy.choose(opts.master_table.dates_csv)
        if is_held(Path(output)):  # another process (a CLI run, a second backend) is writing this table
            raise OutputBusy(Path(output))
        job = self.jobs.start(opts, weights=weights, output=output)
        return {"job_id": job.id, "output": output, "weights": weights}

    def job_status(self, job_id: str, log_lines: int = LOG_SHOWN) -> dict[str, Any]:
        """State, progress, images/s, ETA, last log lines, errors so far and (when ended) the summary."""
        if not 0 <= log_lines <= 500:
            raise RpcError(INVALID_PARAMS, "Parameter 'log_lines' of job_status must be between 0 and 500",
                           {"parameter": "log_lines"})
        return self.jobs.get(job_id).snapshot(log_lines)

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        """Stop a job after its current batch; ``cancelled`` is false if it had already ended."""
        return {"job_id": job_id, "cancelled": self.jobs.cancel(job_id)}

    def list_jobs(self) -> dict[str, Any]:
        """Known jobs, newest last (a reloaded page finds its running job here)."""
        return {"jobs": [job.snapshot(0) for job in self.jobs.jobs()]}

    def read_table(self, path: str, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """One page of a result table in the workspace (or under a chosen folder)."""
        if offset < 0:
            raise RpcError(INVALID_PARAMS, "Parameter 'offset' of read_table must not be negative",
                           {"parameter": "offset"})
        if not 1 <= limit <= MAX_TABLE_PAGE:
            raise RpcError(INVALID_PARAMS, f"Parameter 'limit' of read_table must be between 1 and {MAX_TABLE_PAGE}",
                           {"parameter": "limit"})
        resolved = self.policy.check_read(path)
        if resolved.suffix.lower() not in TABLE_SUFFIXES:
            if not resolved.is_file():
                raise RpcError(NOT_FOUND, f"File not found: {path}", {"path": path})
            raise RpcError(CANNOT_READ, f"Not a table (.csv or .parquet): {resolved.name}", {"path": path})
        fh, real = self._open(path)  # read from the descriptor that was checked, in O(limit) memory
        try:
            with fh:
                page = read_page(fh, offset=offset, limit=limit, suffix=resolved.suffix.lower())
        except OffsetError:
            raise
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise RpcError(CANNOT_READ, f"Cannot read the table {resolved.name}: {exc}", {"path": path}) from None
        return {**dict(page), "path": str(real), "offset": offset, "limit": limit}

    def _open(self, path: str) -> tuple[Any, Path]:
        """The checked file, opened once (see :meth:`PathPolicy.open_read`); missing → -32002."""
        try:
            return self.policy.open_read(path)
        except FileNotFoundError:
            raise RpcError(NOT_FOUND, f"File not found: {path}", {"path": path}) from None

    def list_files(self) -> dict[str, Any]:
        """Result tables in ``<workspace>/DATA/extracted_features``, newest first, with their side files."""
        out_dir = self.policy.output_dir
        files = []
        if out_dir.is_dir():
            for entry in out_dir.iterdir():
                name = entry.name
                if (name.startswith(".") or entry.suffix.lower() not in TABLE_SUFFIXES
                        or name.endswith(SIDECAR_SUFFIXES) or entry.is_symlink() or not entry.is_file()):
                    continue
                st = entry.stat()
                side = {key: str(entry.with_name(entry.stem + suffix)) for key, suffix in
                        (("errors_path", ".errors.csv"), ("provenance_path", ".json"),
                         ("skipped_path", ".skipped.csv"))}
                files.append({"name": name, "path": str(entry), "size": st.st_size, "modified": _iso(st.st_mtime),
                              "mtime": st.st_mtime, "format": entry.suffix.lower().lstrip("."),
                              **{k: (v if Path(v).is_file() else None) for k, v in side.items()},
                              **_provenance_context(side["provenance_path"])})
        files.sort(key=lambda f: (-f["mtime"], f["name"]))
        return {"workspace": str(self.policy.workspace), "folder": str(out_dir), "files": files}

    def thumbnail(self, path: str, size: int = 128) -> dict[str, Any]:
        """A PNG thumbnail (data URL) of an image under a chosen folder or the workspace, scaled to 8 bits
        as the extraction reads it (see :func:`radfeat.pipeline.images.thumbnail_png`)."""
        if not 16 <= size <= 1024:
            raise RpcError(INVALID_PARAMS, "Parameter 'size' of thumbnail must be between 16 and 1024",
                           {"parameter": "size"})
        fh, resolved = self._open(path)  # what was opened is what was checked, and what is read
        try:
            with fh:
                thumb = thumbnail_png(_same_file_path(fh, resolved), size, resolved.name)
        except ImageError as exc:
            raise RpcError(CANNOT_READ, f"Cannot make a thumbnail of {resolved.name}: {exc}", {"path": path}) from None
        data = base64.b64encode(thumb.png).decode("ascii")
        return {"data_url": f"data:image/png;base64,{data}", "width": thumb.width, "height": thumb.height,
                "original_width": thumb.original_width, "original_height": thumb.original_height}

    def version(self) -> dict[str, Any]:
        """Versions and the ONNX Runtime execution providers available here."""
        try:
            import onnxruntime as ort

            ort_version, providers = ort.__version__, list(ort.get_available_providers())
        except ImportError:
            ort_version, providers = None, []
        return {"radfeat": __version__, "onnxruntime": ort_version, "providers": providers,
                "python": sys.version.split()[0]}


def _same_file_path(fh: Any, real: Path) -> Path:
    """A path to the file open as ``fh`` that no later swap can redirect (Linux ``/proc``), else its real path."""
    proc = Path(f"/proc/self/fd/{fh.fileno()}")
    return proc if proc.exists() else real
