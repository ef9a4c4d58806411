"""``radfeat fit``: read → cross-validate → fit on all rows → ONNX heads, metrics, ROC → the workspace.

Everything goes to ``<workspace>/DATA/models/<name>/``, which appears whole or not at all: the
files are written into a hidden staging folder beside it, then swapped in by renames (a previous
fit of the same name is replaced only once the new one is complete).  Every write goes through
:mod:`radfeat.output.atomic`: no folder or file is ever reached through a symbolic link.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from radfeat import __version__
from radfeat.fit import head as head_mod
from radfeat.fit.data import FitData, load
from radfeat.fit.options import MODELS_SUBDIR, FitOptions, check
from radfeat.fit.validation import METRICS, CvResult, cross_validate, train
from radfeat.options import OptionsError, Problem
from radfeat.output.atomic import atomic_open, staged_folder, write_bytes_atomic, write_text_atomic


@dataclass
class FitProgress:
    stage: str
    done: int = 0
    total: int = 0
    message: str = ""


@dataclass
class FitSummary:
    output_dir: str
    name: str
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def missing_dependencies() -> str | None:
    """A message when the fit extra is not installed (running a head needs only onnxruntime)."""
    import importlib.util

    lacking = []
    for module in ("sklearn", "skl2onnx", "onnx.helper"):
        package = {"sklearn": "scikit-learn"}.get(module.split(".")[0], module.split(".")[0])
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # the parent package of a submodule is missing
            found = False
        if not found:
            lacking.append(package)
    if lacking:
        return ("Fitting needs scikit-learn, skl2onnx and onnx (not installed: " + ", ".join(lacking)
                + "); install them with: pip install 'radfeat[fit]'")
    return None


def _output_dir(opts: FitOptions) -> Path:
    ws = Path(opts.workspace).expanduser().resolve()
    out = opts.output_dir()
    if out.parent != ws / MODELS_SUBDIR:
        raise OptionsError([Problem("name", f"Models are written only under {ws / MODELS_SUBDIR}")])
    return out


def fit_model(options: FitOptions | None = None, *, progress: Callable[[FitProgress], None] | None = None,
              cancel: threading.Event | None = None, log: Callable[[str], None] | None = None,
              **kwargs: Any) -> FitSummary:
    """Fit, validate and save; raises :class:`OptionsError` (before any work) when the fit cannot be honest."""
    opts = options if options is not None else FitOptions.from_dict(kwargs)
    log = log or print
    report = progress or (lambda p: None)
    check(opts)
    lacking = missing_dependencies()
    if lacking:
        raise OptionsError([Problem("models", lacking)])
    out = _output_dir(opts)
    t0 = time.perf_counter()
    report(FitProgress("reading", message=f"Reading {Path(opts.table).name}"))
    data = load(opts)
    r = data.report
    log(f"{r['rows']} labelled row(s) of {r['patients']} patient(s) ({data.group_column}), {r['features']} "
        f"feature(s); positive class '{data.classes[1]}': {r['positives']} row(s), negative: {r['negatives']}")
    total = len(opts.models) * (opts.folds + 1)
    done = 0

    def step(msg: str) -> None:
        nonlocal done
        done += 1
        log(msg)
        report(FitProgress("fitting", done=done, total=total, message=msg))

    cv = cross_validate(data, opts.models, opts.folds, opts.seed, step=step, cancel=cancel)
    summary = FitSummary(output_dir=str(out), name=opts.model_name(), data=r)
    ws = Path(opts.workspace).expanduser().resolve()
    with staged_folder(out, root=ws) as staging:  # links refused at every level, swapped in whole
        heads = _fit_final(opts, data, cv, staging, summary, step, ws)
        _write_tables(data, cv, staging, ws)
        _write_roc(data, cv, staging, opts, ws)
        meta = _metrics_json(opts, data, cv, heads, time.perf_counter() - t0)
        write_text_atomic(staging / "metrics.json", json.dumps(meta, indent=2), root=ws)
    summary.files = {p.name: str(out / p.name) for p in sorted(out.iterdir())}
    summary.seconds = time.perf_counter() - t0
    report(FitProgress("done", done=total, total=total, message=f"Wrote {out}"))
    log(f"Wrote {out}")
    return summary


def _fit_final(opts: FitOptions, data: FitData, cv: CvResult, staging: Path, summary: FitSummary,
               step: Callable[[str], None], ws: Path) -> dict[str, dict[str, Any]]:
    """Fit each kind on every row, save it as an ONNX head and check ONNX against scikit-learn."""
    heads: dict[str, dict[str, Any]] = {}
    for kind in opts.models:
        model = train(kind, data.x, data.y, opts.seed)
        rep = cv.models[kind]
        meta = {"name": f"{opts.model_name()}_{kind}", "model": kind, "target": opts.target,
                "classes": list(data.classes), "positive": data.classes[1], "radfeat": __version__,
                "cv_auc": rep.summary["auc"], "folds": opts.folds, "rows": int(len(data.y))}
        blob = head_mod.to_onnx(model, data.columns, meta)
        path = staging / f"{kind}.onnx"
        write_bytes_atomic(path, blob, root=ws)
        diff = float(np.max(np.abs(head_mod.Head.load(path).scores(data.x) - model.scores(data.x))))
        heads[kind] = {"file": path.name, "onnx_max_abs_diff": diff}
        auc = rep.summary["auc"]
        summary.models[kind] = {"auc": auc, "pooled_auc": rep.pooled_auc, "head": str(Path(summary.output_dir) / path.name),
                                "onnx_max_abs_diff": diff}
        step(f"{kind}: final model on {len(data.y)} rows; CV AUC {_fmt(auc)}; ONNX head matches "
             f"scikit-learn to {diff:.1e}")
    return heads


def _fmt(s: dict[str, float | None]) -> str:
    if s["mean"] is None:
        return "n/a"
    if s["ci_low"] is None:
        return f"{s['mean']:.3f}"
    return f"{s['mean']:.3f} (95% CI {s['ci_low']:.3f}–{s['ci_high']:.3f})"


def _write_tables(data: FitData, cv: CvResult, staging: Path, ws: Path) -> None:
    kinds = list(cv.models)
    with atomic_open(staging / "folds.csv", "w", root=ws, encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["model", "fold", "train_rows", "test_rows", "test_patients", *METRICS])
        for kind in kinds:
            for f in cv.models[kind].folds:
                w.writerow([kind, f["fold"], f["train_rows"], f["test_rows"], f["test_patients"],
                            *(repr(f[m]) for m in METRICS)])
    with atomic_open(staging / "predictions.csv", "w", root=ws, encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row", data.group_column, "fold", "target", *(f"score_{k}" for k in kinds)])
        for i, key in enumerate(data.keys):
            w.writerow([key, data.groups[i], int(cv.fold_of_row[i]), data.classes[int(data.y[i])],
                        *(repr(float(cv.models[k].oof_score[i])) for k in kinds)])


def _write_roc(data: FitData, cv: CvResult, staging: Path, opts: FitOptions, ws: Path) -> None:
    from radfeat.fit.roc import draw_roc, roc_points

    curves = []
    for kind, rep in cv.models.items():
        fpr, tpr = roc_points(data.y, rep.oof_score)
        curves.append((f"{kind}: AUC {_fmt(rep.summary['auc'])}", fpr, tpr))
    with atomic_open(staging / "roc.png", "wb", root=ws) as fh:
        draw_roc(curves, f"{opts.target} = {data.classes[1]}: {opts.folds}-fold CV by patient", fh)


def _metrics_json(opts: FitOptions, data: FitData, cv: CvResult, heads: dict[str, dict[str, Any]],
                  seconds: float) -> dict[str, Any]:
    return {
        "radfeat": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "options": opts.to_dict(),
        "data": {**data.report, "group_column": data.group_column, "classes": list(data.classes),
                 "columns": data.columns},
        "validation": {"method": "StratifiedGroupKFold", "folds": opts.folds, "seed": opts.seed,
                       "threshold": 0.5, "ci": "95% Student t over folds"},
        "models": {k: {"summary": rep.summary, "pooled_auc": rep.pooled_auc, "folds": rep.folds, **heads[k]}
                   for k, rep in cv.models.items()},
        "seconds": round(seconds, 3),
    }

