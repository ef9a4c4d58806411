"""LIME maps: the lime package's explainer reproduced exactly, batched; a known region is found; reruns agree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lime")

from radfeat.extractors.lime_maps import LimeSettings, explain, lime_maps, superpixels  # noqa: E402
from radfeat.synthetic import chest_like  # noqa: E402

SIZE = 64


def image() -> np.ndarray:
    return (chest_like(SIZE, SIZE, seed=2).astype(np.float32) / 255 * 2048 - 1024).astype(np.float32)


def region_model(batch: np.ndarray) -> np.ndarray:
    """Two 'pathologies': 0 answers to the texture (spread of values) of the top-left 16 × 16 square only,
    1 to nothing.  (Texture, not mean brightness: LIME hides a superpixel by its own mean, which keeps a
    region's mean unchanged.)"""
    score = 1 / (1 + np.exp(-(batch[:, :16, :16].std(axis=(1, 2)) - 40) / 20))
    return np.stack([score, np.full(len(batch), 0.3)], axis=1)


def test_same_explanation_as_lime_image_explainer() -> None:
    from lime import lime_image

    x = image().astype(np.float64)  # LIME perturbs in float64; so does radfeat when given float64
    settings = LimeSettings(samples=60, seed=4, batch_size=7)
    segments, weights = explain(x, region_model, [0], settings)
    explainer = lime_image.LimeImageExplainer(random_state=settings.seed)
    ref = explainer.explain_instance(np.repeat(x[:, :, None].astype(np.float64), 3, axis=2),
                                     lambda rgb: region_model(rgb[..., 0]), labels=(0,), top_labels=None,
                                     num_samples=settings.samples, batch_size=10,
                                     segmentation_fn=lambda img: segments, random_seed=settings.seed)
    got = dict(weights[0])
    want = dict(ref.local_exp[0])
    assert got.keys() == want.keys()
    np.testing.assert_allclose([got[k] for k in sorted(got)], [want[k] for k in sorted(want)], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("segmentation", ["slic", "quickshift"])
def test_top_superpixels_cover_the_region_that_decides(segmentation: str) -> None:
    x = image()
    settings = LimeSettings(samples=300, features=3, segmentation=segmentation, seed=0)
    (cam, flat) = lime_maps(x, region_model, [0, 1], settings)
    segments = superpixels(x, segmentation, 0)
    inside = np.zeros((SIZE, SIZE), bool)
    inside[:16, :16] = True
    # every superpixel kept in the map touches the deciding square, and together they cover most of it
    for s in np.unique(segments[cam > 0]):
        assert (inside & (segments == s)).any(), s
    assert (cam > 0)[inside].mean() > 0.8, (cam > 0)[inside].mean()
    assert not flat.any()  # a constant answer is explained by nothing


def test_same_seed_same_maps_other_seed_other_samples() -> None:
    x = image()
    a = lime_maps(x, region_model, [0], LimeSettings(samples=80, seed=1))[0]
    b = lime_maps(x, region_model, [0], LimeSettings(samples=80, seed=1))[0]
    c = lime_maps(x, region_model, [0], LimeSettings(samples=80, seed=2))[0]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_saliency_run_with_lime_is_reproducible(tmp_path, tiny_weights, make_patients):
    """Through the CLI on a DenseNet: rows and PNGs for each pathology; a rerun with the same seed gives
    byte-identical maps."""
    import pandas as pd
    from helpers import radfeat

    data = tmp_path / "cxr"
    make_patients(data, n_patients=1, per_folder=1, size=(120, 100))
    tables = []
    for run in ("a", "b"):
        ws = tmp_path / run
        radfeat("extract", str(data), "--type", "saliency", "--weights", tiny_weights, "--workspace", str(ws),
                "--saliency-methods", "lime", "--pathologies", "Effusion,Atelectasis", "--styles", "gray,overlay",
                "--lime-samples", "40", "--lime-seed", "3", "--quiet")
        tables.append(pd.read_csv(ws / "DATA" / "extracted_features" / "image_saliency_maps.csv"))
    a, b = tables
    assert len(a) == 4 and set(a["method"]) == {"lime"} and set(a["pathology"]) == {"Effusion", "Atelectasis"}
    for pa, pb in zip(a["path"], b["path"], strict=True):
        assert Path(pa).read_bytes() == Path(pb).read_bytes()


def test_lime_refused_without_the_package(monkeypatch, tiny_weights) -> None:
    import sys

    from radfeat.options import ExtractOptions, validate

    monkeypatch.setitem(sys.modules, "lime", None)  # as if not installed
    problems = validate(ExtractOptions(input=".", type="saliency", weights=tiny_weights, saliency_methods=["lime"]))
    msgs = [p.message for p in problems if p.field == "saliency_methods"]
    assert msgs == ["LIME needs the lime and scikit-image packages, which are not installed; "
                    "install them with: pip install 'radfeat[explain]'"]
    bad = validate(ExtractOptions(input=".", type="saliency", weights=tiny_weights, saliency_methods=["lime"],
                                  lime_samples=5, lime_segmentation="watershed"))
    fields = {p.field for p in bad}
    assert {"lime_samples", "lime_segmentation"} <= fields
