"""Read a radfeat table and its labels into the matrix, targets and patient groups of a fit.

Every row that cannot be used is counted (no label, label without a row, missing target), and
everything that would make the validation dishonest or impossible is refused before any fitting:
a target with other than two values, a class with fewer patients than folds, no feature column.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from radfeat.fit.options import FitOptions
from radfeat.options import OptionsError, Problem

_POSITIVE_WORDS = ("1", "1.0", "true", "yes", "y", "positive", "pos")


@dataclass
class FitData:
    x: np.ndarray  # rows × features, float64 (NaN where the table has no value)
    y: np.ndarray  # 0/1
    groups: np.ndarray  # patient id per row (str)
    keys: list[str]  # what identifies each row in the outputs (the join key, or the row number)
    columns: list[str]
    classes: tuple[str, str]  # (negative, positive) as written in the labels
    group_column: str
    report: dict[str, Any] = field(default_factory=dict)


def _refuse(name: str, message: str) -> OptionsError:
    return OptionsError([Problem(name, message)])


def read_table(path: Path) -> pd.DataFrame:
    """A radfeat table (CSV, Parquet or ARFF) with identifier columns as text."""
    if path.suffix == ".parquet":
        df = pd.read_parquet(path)
    elif path.suffix == ".arff":
        from radfeat.output.paging import read_arff

        columns, rows, _ = read_arff(path)
        df = pd.DataFrame(rows, columns=columns)
    else:
        try:
            header = pd.read_csv(path, nrows=0).columns
            ids = {c: str for c in header if c.startswith("level_") or c in ("filename", "PatientID")}
            df = pd.read_csv(path, dtype=ids, keep_default_na=False, na_values=["", "nan", "NaN", "?"])
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise _refuse("table", f"Cannot read {path.name} as a table: {exc}") from None
    for col in df.columns:
        if col.startswith("level_") or col in ("filename", "PatientID"):
            df[col] = df[col].astype(str)
    return df


def _group_column(df: pd.DataFrame, wanted: str | None) -> str:
    if wanted:
        if wanted not in df.columns:
            raise _refuse("group", f"Patient column '{wanted}' is not in the table")
        return wanted
    levels = [c for c in df.columns if c.startswith("level_")]
    if "level_1" in levels:
        return "level_1"
    if levels:
        return levels[0]  # a master table keeps one patient column, level_K
    if "PatientID" in df.columns:  # a master table whose patients come from the DICOM headers
        return "PatientID"
    raise _refuse("group", "The table has no patient column (level_1 …, PatientID); name one with --group")


def _join_labels(df: pd.DataFrame, opts: FitOptions, group: str, report: dict[str, Any]) -> pd.DataFrame:
    labels = pd.read_csv(Path(opts.labels).expanduser(), dtype=str, keep_default_na=False,
                         na_values=["", "nan", "NaN", "NA"])
    if opts.target not in labels.columns:
        raise _refuse("target", f"Column '{opts.target}' is not in the labels CSV")
    key = opts.join or ("filename" if "filename" in df.columns and "filename" in labels.columns else group)
    for where, frame in (("table", df), ("labels CSV", labels)):
        if key not in frame.columns:
            raise _refuse("join", f"Join column '{key}' is not in the {where}; name a shared column with --join")
    labels = labels[[key, opts.target]].copy()
    labels[key] = labels[key].str.strip()
    dup = labels[key].duplicated(keep=False)
    if dup.any():
        bad = ", ".join(sorted(set(labels.loc[dup, key]))[:5])
        raise _refuse("labels", f"The labels CSV gives {key} more than one row: {bad}")
    if opts.target in df.columns:
        df = df.drop(columns=[opts.target])
    df = df.copy()
    df[key] = df[key].astype(str).str.strip()
    merged = df.merge(labels, on=key, how="left", indicator=True)
    report["join"] = key
    report["rows_without_label"] = int((merged["_merge"] == "left_only").sum())
    report["labels_without_row"] = int((~labels[key].isin(df[key])).sum())
    return merged.drop(columns=["_merge"])


def _binary_target(values: pd.Series, positive: str | None) -> tuple[np.ndarray, tuple[str, str]]:
    text = values.astype(str).str.strip()
    found = sorted(set(text))
    if len(found) != 2:
        shown = ", ".join(found[:6]) + (" …" if len(found) > 6 else "")
        raise _refuse("target", f"The target must have exactly two values; it has {len(found)}: {shown}")
    if positive is None:
        lower = [v.lower() for v in found]
        pick = [v for v, low in zip(found, lower, strict=True) if low in _POSITIVE_WORDS]
        positive = pick[0] if len(pick) == 1 else found[1]
    elif positive not in found:
        raise _refuse("positive", f"Positive class '{positive}' is not a value of the target ({', '.join(found)})")
    negative = found[0] if found[1] == positive else found[1]
    return (text == positive).to_numpy().astype(np.int64), (negative, positive)


def _feature_columns(df: pd.DataFrame, opts: FitOptions, exclude: set[str]) -> list[str]:
    candidates = [c for c in df.columns if c not in exclude and not c.startswith("level_") and c != "filename"]
    if opts.columns:
        chosen = [c for c in candidates if any(fnmatch.fnmatchcase(c, p) for p in opts.columns)]
        if not chosen:
            raise _refuse("columns", f"No column of the table matches {', '.join(opts.columns)}")
        return chosen
    return candidates


def _numeric(df: pd.DataFrame, columns: list[str]) -> tuple[np.ndarray, list[str]]:
    """The numeric matrix; columns with text in them are refused, columns without any value dropped."""
    out = np.empty((len(df), len(columns)), dtype=np.float64)
    for j, col in enumerate(columns):
        try:
            out[:, j] = pd.to_numeric(df[col], errors="raise").to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            raise _refuse("columns", f"Column '{col}' is not numeric; choose feature columns with --columns") from None
    keep = ~np.all(np.isnan(out), axis=0)
    return out[:, keep], [c for c, k in zip(columns, keep, strict=True) if k]


def load(opts: FitOptions) -> FitData:
    """Read, join and check; raises :class:`OptionsError` naming the problem."""
    path = Path(opts.table).expanduser()
    df = read_table(path)
    report: dict[str, Any] = {"table_rows": int(len(df))}
    group = _group_column(df, opts.group)
    if opts.labels:
        df = _join_labels(df, opts, group, report)
    elif opts.target not in df.columns:
        raise _refuse("target", f"Column '{opts.target}' is not in the table; give the labels with --labels")
    missing = df[opts.target].isna()
    report["rows_missing_target"] = int(missing.sum())
    df = df[~missing].reset_index(drop=True)
    if df.empty:
        raise _refuse("target", "No row of the table has a label")
    y, classes = _binary_target(df[opts.target], opts.positive)
    exclude = {opts.target, group, report.get("join", "")}
    if opts.columns is None:  # text columns (the master table's date …) are not features
        exclude |= {c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])}
    columns = _feature_columns(df, opts, exclude)
    x, columns = _numeric(df, columns)
    if not columns:
        raise _refuse("columns", "The table has no numeric feature column with values")
    groups = df[group].astype(str).to_numpy()
    _check_patients(y, groups, classes, opts.folds)
    key = report.get("join") or ("filename" if "filename" in df.columns else None)
    keys = df[key].astype(str).tolist() if key else [str(i) for i in range(len(df))]
    report.update(rows=int(len(df)), patients=int(len(set(groups))), features=len(columns),
                  positives=int(y.sum()), negatives=int(len(y) - y.sum()))
    return FitData(x, y, groups, keys, columns, classes, group, report)


def _check_patients(y: np.ndarray, groups: np.ndarray, classes: tuple[str, str], folds: int) -> None:
    """Grouped stratified folds need every class in at least ``folds`` patients."""
    for value, label in enumerate(classes):
        patients = len(set(groups[y == value]))
        if patients < folds:
            raise _refuse("folds", f"Class '{label}' has {patients} patient(s); {folds}-fold cross-validation "
                                   f"grouped by patient needs at least {folds} — use fewer folds or more data")
