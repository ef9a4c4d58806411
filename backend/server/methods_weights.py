"""RPC methods that bring weights onto this machine from the page: probe, download (a job), import.

* ``probe_weights(name)`` asks the weight set's server (a few seconds at most, nothing saved)
  whether a download can work, so the page offers the button only when it can;
* ``download_weights(name)`` starts a job of kind ``download``: ``job_status`` shows bytes
  received (``done``/``total``), ``cancel_job`` stops it and the next try resumes the ``.part``;
* ``import_weights(paths)`` takes files or folders picked in the window's native dialogs: files
  named like a catalog entry are verified and copied exactly as ``radfeat models import`` does,
  any other TorchXRayVision checkpoint (``.pt``/``.pth``/``.ckpt``) is registered under its file name.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from radfeat.errors import RadfeatError
from radfeat.server.rpc import INVALID_PARAMS, NOT_FOUND, RpcError
from radfeat.weights.availability import probe
from radfeat.weights.catalog import Catalog
from radfeat.weights.download import fetch
from radfeat.weights.offline_import import IMPORTED, PRESENT, import_paths
from radfeat.weights.registration import add_weights

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
MAX_IMPORT_PATHS = 100


def _weight_set(name: str) -> Any:
    try:
        return Catalog().get(name)
    except KeyError as exc:
        raise RpcError(NOT_FOUND, str(exc), {"name": name}) from None


def _download_job(wset: Any) -> Callable[..., dict[str, Any]]:
    """The job body: fetch with progress in bytes; cancel keeps the partial file."""
    def run(_options: Any, *, progress: Callable, cancel: threading.Event, log: Callable) -> dict[str, Any]:
        def on_bytes(done: int, total: int | None) -> None:
            progress({"stage": "downloading", "done": done, "total": total or wset.size or 0,
                      "message": f"Downloading {wset.name}"})

        progress({"stage": "connecting", "done": 0, "total": wset.size or 0, "message": f"Connecting for {wset.name}"})
        path = fetch(wset, log=log, on_progress=on_bytes, cancel=cancel, timeout=30.0)
        size = path.stat().st_size
        return {"name": wset.name, "path": str(path), "size": size, "ok": 1, "failed": 0}

    return run


def _user_name(path: Path) -> str:
    """A weights name from a checkpoint's file name (letters, digits, '.', '_', '-')."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-.") or "weights"
    return name if name[0].isalnum() else f"w{name}"


class WeightsMethods:
    NAMES = ["probe_weights", "download_weights", "import_weights"]

    def __init__(self, api: Any):
        self.api = api

    def probe_weights(self, name: str) -> dict[str, Any]:
        """Can ``name`` be downloaded from here?  ``{name, reachable, size, message}`` (≤ 5 s, nothing saved)."""
        return probe(_weight_set(name)).to_json()

    def download_weights(self, name: str) -> dict[str, Any]:
        """Start downloading ``name`` as a job (``kind: download``); ``job_status`` gives bytes done/total."""
        wset = _weight_set(name)
        if not wset.url:
            raise RpcError(INVALID_PARAMS, f"'{name}' has no download address; import its weight file instead",
                           {"name": name})
        if wset.downloaded:
            raise RpcError(INVALID_PARAMS, f"'{name}' is already on this machine", {"name": name})
        job = self.api.jobs.start({"weights": wset.name}, weights=wset.name, output=str(wset.path), kind="download",
                                  run=_download_job(wset))
        return {"job_id": job.id, "name": wset.name, "path": str(wset.path)}

    def import_weights(self, paths: list[str]) -> dict[str, Any]:
        """Import weight files or folders: ``{imported: [{name, path}], skipped: [{path, reason}], log}``."""
        if not 1 <= len(paths) <= MAX_IMPORT_PATHS:
            raise RpcError(INVALID_PARAMS, f"Parameter 'paths' of import_weights must list 1 to {MAX_IMPORT_PATHS} "
                                           "files or folders", {"parameter": "paths"})
        resolved, skipped = [], []
        for raw in paths:
            path = self.api.policy.resolve(raw)
            if not path.exists():
                skipped.append({"path": raw, "reason": "not found"})
            else:
                resolved.append(path)
        lines: list[str] = []
        report = import_paths(resolved, log=lines.append) if resolved else None
        imported = [{"name": r.name, "path": str(r.source), "status": r.status} for r in
                    (report.results if report else []) if r.status in (IMPORTED, PRESENT)]
        skipped += [{"path": str(r.source), "reason": r.message} for r in (report.results if report else [])
                    if r.status not in (IMPORTED, PRESENT)]
        matched = {str(r.source) for r in (report.results if report else [])}
        for path in resolved:
            if path.is_file() and str(path) not in matched:
                entry, problem = self._register_checkpoint(path, lines)
                (imported if entry else skipped).append(entry or {"path": str(path), "reason": problem})
        if not imported and not skipped:
            skipped.append({"path": ", ".join(paths), "reason": "no weight files found; expected TorchXRayVision "
                                                                "weight files named as in the catalog"})
        return {"imported": imported, "skipped": skipped, "log": lines}

    @staticmethod
    def _register_checkpoint(path: Path, lines: list[str]) -> tuple[dict[str, Any] | None, str]:
        """A file that no catalog entry names: a user's own checkpoint, registered like 'radfeat models add'."""
        if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
            return None, (f"not a weight file radfeat knows ({path.suffix or 'no extension'}); "
                          "ONNX models are added with 'radfeat models add-onnx'")
        name = _user_name(path)
        if name in Catalog():
            return None, f"a weight set named '{name}' already exists; rename the file to import it"
        try:
            entry = add_weights(name, path, log=lines.append)
        except (RadfeatError, ValueError, KeyError, RuntimeError) as exc:  # CheckpointError is a RadfeatError
            return None, str(exc)
        return {"name": entry.name, "path": str(path), "status": "registered"}, ""
