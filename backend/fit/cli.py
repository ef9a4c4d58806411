"""``radfeat fit TABLE --labels CSV --target COLUMN``: the command line of :mod:`radfeat.fit`."""

from __future__ import annotations

import argparse
import sys

from radfeat.fit.options import MODEL_KINDS, FitOptions


def _split(text: str | None) -> list[str] | None:
    items = [t.strip() for t in (text or "").split(",") if t.strip()]
    return items or None


def _int(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value  # the shared validation words the problem


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fit", help="train and cross-validate a classifier on an extracted table (ONNX head)",
                       description="Logistic regression and a small MLP on the chosen feature columns, "
                                   "cross-validated by patient; writes DATA/models/<name>/ in the workspace.")
    p.add_argument("table", help="a radfeat table (CSV, Parquet or ARFF)")
    p.add_argument("--target", required=True, help="column to predict (two values)")
    p.add_argument("--labels", help="CSV with the target column (default: the table has it)")
    p.add_argument("--join", help="column shared by table and labels (default filename, else the patient column)")
    p.add_argument("--group", help="patient column (default level_1, else the master table's level_K)")
    p.add_argument("--columns", help="feature columns or patterns, comma-separated (e.g. 'img_densefeatures_*'); "
                                     "default: every numeric column")
    p.add_argument("--positive", help="the target value that is the positive class (default: 1/yes/true, else the "
                                      "second in sort order)")
    p.add_argument("--models", default=",".join(MODEL_KINDS), help=f"{','.join(MODEL_KINDS)} (default both)")
    p.add_argument("--folds", type=_int, default=5, help="cross-validation folds (default 5)")
    p.add_argument("--seed", type=_int, default=0, help="seed of the fold assignment and the MLP (default 0)")
    p.add_argument("--name", help="output folder under DATA/models/ (default <table>_<target>)")
    p.add_argument("--workspace", default=".", help="MEDomics workspace (default: current folder)")
    p.set_defaults(func=cmd_fit)


def cmd_fit(a: argparse.Namespace) -> int:
    from radfeat.fit.run import fit_model
    from radfeat.options import OptionsError

    opts = FitOptions(table=a.table, target=a.target, labels=a.labels, join=a.join, group=a.group,
                      columns=_split(a.columns), positive=a.positive, models=_split(a.models) or [],
                      folds=a.folds, seed=a.seed, name=a.name, workspace=a.workspace)
    try:
        s = fit_model(opts, log=lambda m: print(m, file=sys.stderr))
    except OptionsError as exc:
        print(f"radfeat: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("radfeat: error: interrupted; nothing was written", file=sys.stderr)
        return 130
    for kind, m in s.models.items():
        auc = m["auc"]
        ci = "" if auc["ci_low"] is None else f" (95% CI {auc['ci_low']:.3f}–{auc['ci_high']:.3f})"
        print(f"{kind}: AUC {auc['mean']:.3f}{ci}, pooled out-of-fold AUC {m['pooled_auc']:.3f} → {m['head']}")
    print(f"Metrics, folds, out-of-fold predictions and ROC plot in {s.output_dir}")
    return 0
