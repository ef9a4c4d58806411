"""RPC methods that prepare a run: readiness in validation, depths, weights list, restarts.

These extend the base methods of :class:`radfeat.server.api.Api` (which they call) with what
the page needs to refuse a run that cannot work *before* it starts (issue 14):

* ``validate_options`` / ``start_extraction`` gain readiness (:mod:`radfeat.server.readiness`);
  ``start_extraction`` refuses when not ready, and refuses to replace an existing table unless
  the options carry ``overwrite: true``;
* ``list_weights`` says which sets are here (``available``) and where they come from (``origin``);
* ``survey_depths`` / ``list_folders``: image counts per depth;
* ``version`` names the workspace and this launch (``instance``), and only usable providers;
* ``list_partial_runs``: interrupted runs the page can offer to resume;
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from radfeat.pipeline.depths import survey
from radfeat.server.partial_runs import partial_runs
from radfeat.server.readiness import cached_survey
from radfeat.server.readiness import check as readiness_check
from radfeat.server.rpc import INVALID_OPTIONS, INVALID_PARAMS, NOT_FOUND, RpcError
from radfeat.weights.availability import available, origin, usable_default
from radfeat.weights.catalog import Catalog

USABLE_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")  # the ones radfeat's sessions use


def _problem_dicts(problems: list) -> list[dict[str, str]]:
    return [{"field": p.field, "message": p.message} for p in problems]


def _split_overwrite(options: dict) -> tuple[dict, bool]:
    options = dict(options)
    overwrite = options.pop("overwrite", False)
    return options, overwrite is True


_cuda_works: bool | None = None


def usable_providers() -> list[str]:
    """ONNX Runtime providers radfeat can use here: CPU, and CUDA only when a session really starts on it."""
    global _cuda_works
    try:
        import onnxruntime as ort
    except ImportError:
        return []
    listed = ort.get_available_providers()
    if "CUDAExecutionProvider" in listed and _cuda_works is None:
        _cuda_works = _cuda_session_starts()
    return [p for p in USABLE_PROVIDERS if p in listed and (p != "CUDAExecutionProvider" or _cuda_works)]


# A one-node ONNX graph (y = Identity(x), float[1], opset 17), serialised: enough to see whether a CUDA
# session really starts, without the onnx package.
_PROBE_MODEL = "CAg6OwoQCgF4EgF5IghJZGVudGl0eRIFcHJvYmVaDwoBeBIKCggIARIECgIIAWIPCgF5EgoKCAgBEgQKAggBQgQKABAR"


def _cuda_session_starts() -> bool:
    """Start a session of a one-node graph on CUDA; False when ONNX Runtime falls back or fails."""
    import base64

    import onnxruntime as ort

    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 4
        session = ort.InferenceSession(base64.b64decode(_PROBE_MODEL), opts, providers=["CUDAExecutionProvider"])
        return session.get_providers()[0] == "CUDAExecutionProvider"
    except Exception:  # missing CUDA libraries, no GPU: not usable
        return False


class SetupMethods:
    """Methods registered over (or beside) the base ones; ``api`` is the base :class:`Api`."""

    NAMES = ["validate_options", "start_extraction", "list_weights", "version", "list_folders",
             "survey_depths", "list_partial_runs"]

    def __init__(self, api: Any):
        self.api = api
        self.instance = secrets.token_hex(8)

    def validate_options(self, options: dict) -> dict[str, Any]:
        """Problems (CLI words), where the table goes, and whether it can run now (readiness)."""
        options, overwrite = _split_overwrite(options)
        opts, problems = self.api._prepare(options)
        return {"valid": not problems, "problems": _problem_dicts(problems),
                "output_path": self.api._output_path(opts, problems), **readiness_check(opts, problems, overwrite)}

    def start_extraction(self, options: dict) -> dict[str, Any]:
        """Start a job; refused (-32000, ``data.problems`` and ``data.readiness``) unless valid and ready."""
        options, overwrite = _split_overwrite(options)
        opts, problems = self.api._prepare(options)
        if not problems:
            ready = readiness_check(opts, problems, overwrite, fresh=True)
            blocking = [e for e in ready["readiness"] if e.get("blocking", True)]
            if blocking:
                words = "; ".join(e["message"] for e in blocking)
                raise RpcError(INVALID_OPTIONS, f"Not ready: {words}", {"problems": [], "readiness": blocking})
        return self.api.start_extraction(options)

    def list_weights(self) -> dict[str, Any]:
        """Every weight set, with ``available`` (its file is here) and ``origin`` (catalog, user, onnx)."""
        base = self.api.list_weights()
        cat = Catalog()
        for entry in base["weights"]:
            wset = cat.get(entry["name"])
            entry["available"] = available(wset)
            entry["origin"] = origin(wset)
            entry["url"] = bool(wset.url)
        base["catalog_default"] = cat.default
        base["default"] = usable_default(None, cat) or cat.default
        return base

    def version(self) -> dict[str, Any]:
        """Versions, usable providers, this backend's workspace and launch id (a new id means a restart)."""
        base = self.api.version()
        base["providers"] = usable_providers()
        base["workspace"] = str(self.api.policy.workspace)
        base["instance"] = self.instance
        return base

    def list_folders(self, root: str, depth: int = 1) -> dict[str, Any]:
        """Folders ``depth`` levels below ``root`` and ``images``: how many images are at that depth."""
        self._folder(root)
        base = self.api.list_folders(root, depth)
        found = cached_survey(Path(base["root"]), depth)
        base["images"] = found.at(depth)
        base["truncated"] = found.truncated
        return base

    def survey_depths(self, root: str, max_depth: int = 6) -> dict[str, Any]:
        """Image and folder counts at each depth below ``root`` (bounded walk), and the depth to propose."""
        if not 1 <= max_depth <= 32:
            raise RpcError(INVALID_PARAMS, "Parameter 'max_depth' of survey_depths must be between 1 and 32",
                           {"parameter": "max_depth"})
        path = self._folder(root)
        found = survey(path, max_depth)
        self.api.policy.choose(path)
        return found.to_json()

    def _folder(self, root: str) -> Path:
        path = self.api.policy.resolve(root)
        if path.is_file():
            raise RpcError(NOT_FOUND, f"{root} is a file, not a folder; choose the folder that holds the images",
                           {"path": root})
        if not path.is_dir():
            raise RpcError(NOT_FOUND, f"Folder not found: {root}", {"path": root})
        return path

    def list_partial_runs(self) -> dict[str, Any]:
        """Interrupted runs in the workspace's output folder, with the options they were started with."""
        active = {job.output for job in self.api.jobs.jobs() if job.active}
        runs = partial_runs(self.api.policy.output_dir)
        for run in runs:
            run["running"] = run["output"] in active
        return {"runs": runs}
