"""LIME saliency maps (Ribeiro et al. 2016) with the ``lime`` package's explainer, batched through ONNX.

For one preprocessed image ``x`` (the model's ``S × S`` input) and the pathologies to explain:

1. superpixels: SLIC or quickshift (scikit-image, through ``lime.wrappers.scikit_image``) on the image
   scaled to [0, 1] as RGB;
2. neighbourhood: exactly what ``lime_image.LimeImageExplainer.explain_instance`` samples — a
   ``num_samples × superpixels`` 0/1 matrix from ``RandomState(seed).randint(0, 2, …)`` with the first
   row all ones; a superpixel that is off takes its own mean value (LIME's ``hide_color=None``).  The
   perturbed images are built in one vectorised step per batch (LIME's own loop copies the image and
   scans every superpixel for every sample) and scored by the ONNX model in batches;
3. explanation: ``lime_base.LimeBase.explain_instance_with_data`` — cosine distance to the original,
   the image explainer's exponential kernel (width 0.25), weighted ridge regression — per pathology,
   on the calibrated prediction that the table reports.

The map paints each of the ``num_features`` superpixels with the largest positive weights with its
weight (the rest 0); :func:`radfeat.extractors.saliency.normalise` then scales it to [0, 1].  A fixed
``seed`` (segmentation and sampling) makes a rerun give the same maps.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

KERNEL_WIDTH = 0.25  # lime_image.LimeImageExplainer's default
ALL_FEATURES = 100000  # explain_instance's default num_features: every superpixel, ranked by weight


def settings(opts: Any) -> LimeSettings:
    return LimeSettings(opts.lime_samples, opts.lime_features, opts.lime_segmentation, opts.lime_seed,
                        batch_size=max(1, opts.batch_size))


@dataclass(frozen=True)
class LimeSettings:
    samples: int = 1000
    features: int = 5
    segmentation: str = "slic"
    seed: int = 0
    batch_size: int = 32


def superpixels(image: np.ndarray, method: str, seed: int) -> np.ndarray:
    """Superpixel labels (``S × S`` ints from 0) of a 2-D image (any range)."""
    from lime.wrappers.scikit_image import SegmentationAlgorithm

    lo, hi = float(image.min()), float(image.max())
    rgb = np.repeat(((image - lo) / (hi - lo if hi > lo else 1.0))[:, :, None], 3, axis=2).astype(np.float64)
    if method == "slic":
        fn = SegmentationAlgorithm("slic", n_segments=50, compactness=10, sigma=1, start_label=0)
    else:
        fn = SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2, random_seed=seed)
    segments = np.asarray(fn(rgb))
    _, dense = np.unique(segments, return_inverse=True)  # labels 0 … n-1, as LIME indexes them
    return dense.reshape(segments.shape)


def neighbourhood(n_segments: int, samples: int, seed: int) -> np.ndarray:
    """LIME's sample matrix: ``RandomState(seed).randint(0, 2, samples × n)``, first row all ones."""
    data = np.random.RandomState(seed).randint(0, 2, samples * n_segments).reshape((samples, n_segments))
    data[0, :] = 1
    return data


def perturbed_scores(x: np.ndarray, segments: np.ndarray, data: np.ndarray,
                     predict: Callable[[np.ndarray], np.ndarray], batch_size: int) -> np.ndarray:
    """The model's scores for each row of ``data`` (off superpixels replaced by their mean)."""
    n = int(segments.max()) + 1
    means = np.bincount(segments.ravel(), weights=x.ravel(), minlength=n) / np.bincount(segments.ravel(), minlength=n)
    fudged = means[segments].astype(x.dtype)
    out = []
    for start in range(0, len(data), batch_size):
        rows = data[start:start + batch_size].astype(bool)
        batch = np.where(rows[:, segments], x[None], fudged[None])
        out.append(np.asarray(predict(batch)))
    return np.concatenate(out)


def explain(x: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], labels: Sequence[int],
            settings: LimeSettings) -> tuple[np.ndarray, dict[int, list[tuple[int, float]]]]:
    """Superpixels and, per label, LIME's ``(superpixel, weight)`` list (largest ``|weight|`` first)."""
    import sklearn.metrics
    from lime import lime_base

    segments = superpixels(x, settings.segmentation, settings.seed)
    n = int(segments.max()) + 1
    data = neighbourhood(n, settings.samples, settings.seed)
    scores = perturbed_scores(x, segments, data, predict, settings.batch_size)
    distances = sklearn.metrics.pairwise_distances(data, data[0].reshape(1, -1), metric="cosine").ravel()
    base = lime_base.LimeBase(lambda d: np.sqrt(np.exp(-(d ** 2) / KERNEL_WIDTH ** 2)),
                              random_state=np.random.RandomState(settings.seed))
    weights = {}
    for label in labels:
        _, local_exp, _, _ = base.explain_instance_with_data(data, scores, distances, label, ALL_FEATURES,
                                                             feature_selection="auto")
        weights[label] = [(int(s), float(w)) for s, w in local_exp]
    return segments, weights


def weight_map(segments: np.ndarray, weights: list[tuple[int, float]], features: int) -> np.ndarray:
    """The ``features`` superpixels with the largest positive weights, painted with their weight."""
    top = sorted((sw for sw in weights if sw[1] > 0), key=lambda sw: -sw[1])[:features]
    paint = np.zeros(int(segments.max()) + 1, dtype=np.float64)
    for s, w in top:
        paint[s] = w
    return paint[segments]


def lime_maps(x: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], labels: Sequence[int],
              settings: LimeSettings) -> list[np.ndarray]:
    """One un-normalised ``S × S`` map per label."""
    segments, weights = explain(x, predict, labels, settings)
    return [weight_map(segments, weights[label], settings.features) for label in labels]
