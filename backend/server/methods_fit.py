"""RPC methods of ``radfeat fit``: validate, run as a job, list what was fitted.

* ``validate_fit(options)`` → ``{valid, problems, output_dir}`` — the CLI's words;
* ``fit_model(options)`` → ``{job_id, output_dir}`` at once; the fit runs as a job (``job_status``,
  ``cancel_job``; ``kind`` is ``fit`` and the summary holds the metrics and file paths);
* ``list_fitted_models()`` → every ``DATA/models/<name>/metrics.json`` of the workspace, newest first.

Paths: the table and the labels CSV are read only inside the workspace or under a chosen folder; the
outputs go to ``<workspace>/DATA/models/<name>/`` (the workspace is the server's, never the page's).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from radfeat.fit.options import MODELS_SUBDIR, FitOptions, validate
from radfeat.options import OptionsError, Problem
from radfeat.server.security import PathDenied


class FitMethods:
    NAMES = ["validate_fit", "fit_model", "list_fitted_models"]

    def __init__(self, api: Any):
        self.api = api
        self.policy = api.policy

    def _prepare(self, raw: dict[str, Any]) -> tuple[FitOptions | None, list[Problem]]:
        raw = dict(raw)
        problems: list[Problem] = []
        if raw.get("workspace") not in (None, "") and raw["workspace"] != str(self.policy.workspace):
            problems.append(Problem("workspace", f"The workspace is fixed when radfeat starts ({self.policy.workspace})"))
        raw["workspace"] = str(self.policy.workspace)
        try:
            opts = FitOptions.from_dict(raw)
        except OptionsError as exc:
            return None, [*problems, *exc.problems]
        except TypeError as exc:
            return None, [*problems, Problem("options", f"Options could not be read: {exc}")]
        for key in ("table", "labels"):
            value = getattr(opts, key)
            if isinstance(value, str) and value:
                try:
                    setattr(opts, key, str(self.policy.check_read(value)))
                except PathDenied:
                    problems.append(Problem(key, f"{key.capitalize()} must be in the workspace or a chosen folder: "
                                                 f"{value}"))
        problems.extend(validate(opts))
        return opts, problems

    def validate_fit(self, options: dict) -> dict[str, Any]:
        """Every problem with ``options`` (that shows without reading the data) and where the model goes."""
        opts, problems = self._prepare(options)
        out = str(opts.output_dir()) if opts is not None and not any(p.field == "name" for p in problems) else None
        return {"valid": not problems, "problems": [{"field": p.field, "message": p.message} for p in problems],
                "output_dir": out}

    def fit_model(self, options: dict) -> dict[str, Any]:
        """Start a fit job (returns at once); invalid options: -32000 with ``data.problems``."""
        from radfeat.fit.run import missing_dependencies

        opts, problems = self._prepare(options)
        lacking = missing_dependencies()
        if lacking:
            problems.append(Problem("models", lacking))
        if problems or opts is None:
            raise OptionsError(problems)
        out = str(opts.output_dir())
        job = self.api.jobs.start(opts, weights=f"fit:{opts.model_name()}", output=out, kind="fit", run=_fit_job())
        return {"job_id": job.id, "output_dir": out}

    def list_fitted_models(self) -> dict[str, Any]:
        """The fits in ``<workspace>/DATA/models``: name, target, AUC per model, files."""
        root = self.policy.workspace / MODELS_SUBDIR
        found = []
        for meta_path in sorted(root.glob("*/metrics.json"), key=lambda p: p.stat().st_mtime, reverse=True):
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            folder = meta_path.parent
            found.append({
                "name": folder.name, "folder": str(folder), "created": meta.get("created"),
                "target": (meta.get("options") or {}).get("target"), "table": (meta.get("options") or {}).get("table"),
                "classes": (meta.get("data") or {}).get("classes"),
                "models": {k: {"auc": v.get("summary", {}).get("auc"), "summary": v.get("summary"),
                               "pooled_auc": v.get("pooled_auc"),
                               "head": str(folder / v.get("file", f"{k}.onnx"))}
                           for k, v in (meta.get("models") or {}).items()},
                "roc": str(folder / "roc.png"), "folds": str(folder / "folds.csv"),
                "predictions": str(folder / "predictions.csv"),
            })
        return {"folder": str(root), "models": found}


def _fit_job() -> Callable[..., dict[str, Any]]:
    def run(opts: FitOptions, *, progress: Callable, cancel: threading.Event, log: Callable) -> dict[str, Any]:
        from radfeat.fit.run import fit_model

        def report(p: Any) -> None:  # the job takes a dict of the Progress fields a fit has
            progress({"stage": p.stage, "done": p.done, "total": p.total, "message": p.message})

        return fit_model(opts, progress=report, cancel=cancel, log=log).to_dict()

    return run
