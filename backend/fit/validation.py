"""Cross-validation grouped by patient, the two small models and their metrics.

Folds come from ``StratifiedGroupKFold``: every row of a patient lands in the same fold, so no
patient is ever in both the training and the test part; classes are balanced across folds as far
as the grouping allows.  Missing values are replaced by the training part's column medians (learnt
inside each fold, never from the test part).  Metrics are computed per fold at the 0.5 threshold;
their mean comes with a 95 % confidence interval from Student's t over the folds.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from radfeat.errors import Cancelled as _CancelledBase
from radfeat.fit.data import FitData

METRICS = ("auc", "accuracy", "sensitivity", "specificity")


class Cancelled(_CancelledBase):
    """The fit was cancelled between two folds."""


def column_medians(x: np.ndarray) -> np.ndarray:
    """Per-column median of the known values (0 for a column without any)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        med = np.nanmedian(x, axis=0) if len(x) else np.zeros(x.shape[1])
    return np.where(np.isnan(med), 0.0, med)


def impute(x: np.ndarray, medians: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), medians, x)


def make_model(kind: str, seed: int) -> Any:
    """``logistic``: standardise + L2 logistic regression; ``mlp``: standardise + one hidden layer of 64."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "logistic":
        clf = LogisticRegression(C=1.0, max_iter=5000)
    elif kind == "mlp":
        clf = MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=500, random_state=seed)
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    return make_pipeline(StandardScaler(), clf)


@dataclass
class FittedModel:
    """A scikit-learn pipeline and the medians that fill its missing inputs."""

    kind: str
    pipeline: Any
    medians: np.ndarray

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Probability of the positive class."""
        return self.pipeline.predict_proba(impute(x, self.medians))[:, 1]


def train(kind: str, x: np.ndarray, y: np.ndarray, seed: int) -> FittedModel:
    from threadpoolctl import threadpool_limits

    medians = column_medians(x)
    model = make_model(kind, seed)
    # one BLAS thread: a multithreaded BLAS may sum in another order from run to run, and the same table,
    # options and seed must give the same model, bit for bit
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        warnings.simplefilter("ignore")  # ConvergenceWarning on tiny folds: the metrics tell the truth anyway
        model.fit(impute(x, medians), y)
    return FittedModel(kind, model, medians)


def fold_metrics(y: np.ndarray, score: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    pred = score >= threshold
    pos, neg = y == 1, y == 0
    return {
        "auc": float(roc_auc_score(y, score)) if pos.any() and neg.any() else float("nan"),
        "accuracy": float(np.mean(pred == pos)),
        "sensitivity": float(np.mean(pred[pos])) if pos.any() else float("nan"),
        "specificity": float(np.mean(~pred[neg])) if neg.any() else float("nan"),
    }


def mean_ci(values: list[float], level: float = 0.95) -> dict[str, float | None]:
    """Mean and Student-t confidence interval over the folds (NaN folds left out)."""
    from scipy import stats

    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return {"mean": None, "sd": None, "ci_low": None, "ci_high": None}
    mean = float(v.mean())
    if len(v) < 2:
        return {"mean": mean, "sd": None, "ci_low": None, "ci_high": None}
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * sd / np.sqrt(len(v)))
    return {"mean": mean, "sd": sd, "ci_low": mean - half, "ci_high": mean + half}


@dataclass
class ModelReport:
    kind: str
    folds: list[dict[str, float]] = field(default_factory=list)
    summary: dict[str, dict[str, float | None]] = field(default_factory=dict)
    oof_score: np.ndarray | None = None  # out-of-fold score of every row
    pooled_auc: float | None = None


@dataclass
class CvResult:
    fold_of_row: np.ndarray  # test fold of each row
    splits: list[tuple[np.ndarray, np.ndarray]]  # (train rows, test rows) per fold
    models: dict[str, ModelReport]


def splits(data: FitData, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import StratifiedGroupKFold

    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in cv.split(data.x, data.y, data.groups)]


def cross_validate(data: FitData, kinds: list[str], folds: int, seed: int, *,
                   step: Callable[[str], None] = lambda msg: None,
                   cancel: threading.Event | None = None) -> CvResult:
    """Fit every model kind on every fold; ``step`` is told after each fitted fold."""
    from sklearn.metrics import roc_auc_score

    parts = splits(data, folds, seed)
    fold_of_row = np.full(len(data.y), -1, dtype=np.int64)
    for i, (_, te) in enumerate(parts):
        fold_of_row[te] = i
    reports: dict[str, ModelReport] = {}
    for kind in kinds:
        rep = ModelReport(kind, oof_score=np.full(len(data.y), np.nan))
        for i, (tr, te) in enumerate(parts):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled")
            model = train(kind, data.x[tr], data.y[tr], seed)
            score = model.scores(data.x[te])
            rep.oof_score[te] = score
            rep.folds.append({"fold": i, "train_rows": int(len(tr)), "test_rows": int(len(te)),
                              "test_patients": int(len(set(data.groups[te]))), **fold_metrics(data.y[te], score)})
            step(f"{kind}: fold {i + 1}/{len(parts)} AUC {rep.folds[-1]['auc']:.3f}")
        rep.summary = {m: mean_ci([f[m] for f in rep.folds]) for m in METRICS}
        rep.pooled_auc = float(roc_auc_score(data.y, rep.oof_score))
        reports[kind] = rep
    return CvResult(fold_of_row, parts, reports)
