"""``radfeat fit``: train a small classifier on an extracted table, validated honestly.

- :mod:`radfeat.fit.data` reads the table and the labels, joins them, picks the feature columns and
  the patient column, and refuses what cannot be validated (a class with too few patients …);
- :mod:`radfeat.fit.validation` runs cross-validation grouped by patient (``StratifiedGroupKFold``:
  no patient is ever in both the training and the test part of a fold) and computes AUC, accuracy,
  sensitivity and specificity per fold with their mean and 95 % confidence interval;
- :mod:`radfeat.fit.head` turns the final scikit-learn model into an ONNX "head" (float64, with
  its median imputation of missing values built in) that ``radfeat extract --head`` runs with
  ONNX Runtime alone;
- :mod:`radfeat.fit.roc` draws the ROC curves (Pillow);
- :mod:`radfeat.fit.run` ties them together and writes ``<workspace>/DATA/models/<name>/``.

scikit-learn and skl2onnx are needed to fit (the ``fit`` extra), not to run a head.
"""

from __future__ import annotations

from typing import Any

__all__ = ["fit"]


def fit(*args: Any, **kwargs: Any) -> Any:
    """Fit and validate; see :func:`radfeat.fit.run.fit_model`."""
    from radfeat.fit.run import fit_model

    return fit_model(*args, **kwargs)
