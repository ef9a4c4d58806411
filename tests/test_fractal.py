"""The vectorised fractal features equal the slow, literal reference (tests/fractal_reference.py)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from fractal_reference import count_clusters, curve_area, curve_area_ratio, curve_skewness, reference_features
from PIL import Image
from radfeat.extractors import fractal_math as fractal
from radfeat.extractors.fractal_math import (
    FractalWarning,
    box_sizes,
    curve_descriptors,
    feature_names,
    fractal_features,
)
from radfeat.pipeline.images import ImageError
from radfeat.pipeline.images import read_rgb as load_rgb

RTOL = 1e-12
ATOL = 1e-12

try:
    import cv2  # noqa: F401

    LABELLERS = ("scipy", "opencv")
except ImportError:  # pragma: no cover - opencv is a dependency
    LABELLERS = ("scipy",)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _noise(h: int, w: int, seed: int, high: int = 256) -> np.ndarray:
    return _rng(seed).integers(0, high, size=(h, w, 3), dtype=np.uint8)


def _few_colours(h: int, w: int, seed: int) -> np.ndarray:
    # A handful of levels: the occupied maps are full of holes and separate clusters.
    return _rng(seed).choice(np.array([0, 4, 9, 30, 200], dtype=np.uint8), size=(h, w, 3))


def _structured(h: int, w: int, seed: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([
        (yy * 7 + xx * 3) % 256,                      # ramp
        np.where((yy // 3 + xx // 2) % 2 == 0, 40, 0),  # checkerboard
        (np.sin(xx / 2.0) * 20 + 60).astype(int),     # stripes
    ], axis=2)
    img = img + _rng(seed).integers(0, 6, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _grey(h: int, w: int, seed: int) -> np.ndarray:
    g = _rng(seed).integers(0, 40, size=(h, w), dtype=np.uint8)
    return np.repeat(g[:, :, None], 3, axis=2)


CASES = {
    "noise_24x24": (lambda: _noise(24, 24, 1), 11),
    "narrow_noise_31x17": (lambda: _noise(31, 17, 2, high=60), 21),  # r = 19, 21 do not fit: NaN
    "few_colours_24x24": (lambda: _few_colours(24, 24, 3), 11),
    "structured_31x17": (lambda: _structured(31, 17, 4), 15),
    "grey_17x31": (lambda: _grey(17, 31, 5), 13),
    "structured_30x26_large_r": (lambda: _structured(30, 26, 6), 25),
}


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FractalWarning)
        return fn(*args, **kwargs)


def _identical(a: dict[str, float], b: dict[str, float]) -> bool:
    return list(a) == list(b) and all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def _assert_same(fast: dict[str, float], slow: dict[str, float]) -> None:
    assert list(fast) == list(slow)
    for key, expected in slow.items():
        got = fast[key]
        if math.isnan(expected):
            assert math.isnan(got), f"{key}: expected NaN, got {got}"
        else:
            assert got == pytest.approx(expected, rel=RTOL, abs=ATOL), key


@pytest.fixture(scope="module")
def reference_values() -> dict[str, dict[str, float]]:
    return {name: reference_features(make(), max_box) for name, (make, max_box) in CASES.items()}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_slow_reference(name: str, reference_values: dict[str, dict[str, float]]) -> None:
    make, max_box = CASES[name]
    _assert_same(_quiet(fractal_features, make(), max_box, workers=1), reference_values[name])


@pytest.mark.parametrize("seed", range(10))
def test_random_small_images(seed: int) -> None:
    rng = _rng(100 + seed)
    h, w = (int(v) for v in rng.integers(3, 17, size=2))
    make = (_noise, _few_colours, _structured, _grey)[seed % 4]
    img = make(h, w, seed) if make is not _noise else _noise(h, w, seed, high=int(rng.integers(8, 256)))
    max_box = int(rng.integers(3, 14))
    fast = _quiet(fractal_features, img, max_box, workers=2)
    _assert_same(fast, reference_features(img, max_box))
    assert all(type(v) is float for v in fast.values())  # plain floats: JSON- and table-friendly


def test_many_blocks_threads_and_both_labellers(monkeypatch: pytest.MonkeyPatch,
                                                reference_values: dict[str, dict[str, float]]) -> None:
    # Tiny work units: many row blocks and several labelling calls per block and box size.
    monkeypatch.setattr(fractal, "_BLOCK_BYTES", 1)
    monkeypatch.setattr(fractal, "_LABEL_VOXELS", 300)
    for name in ("few_colours_24x24", "structured_30x26_large_r"):
        make, max_box = CASES[name]
        results = []
        for labeller in LABELLERS:
            monkeypatch.setattr(fractal, "_labeller", lambda lab=labeller: lab)
            for workers in (1, 3):
                results.append(_quiet(fractal_features, make(), max_box, workers=workers))
        _assert_same(results[0], reference_values[name])
        for other in results[1:]:  # integer accumulators: bit-identical whatever the split
            assert _identical(other, results[0])


def test_cluster_stats_any_label_numbering() -> None:
    rng = _rng(7)
    r = 7
    boxes = np.zeros((40, r + 1, r), dtype=np.uint8)
    boxes[:, :r, :] = rng.random((40, r, r)) < 0.5
    boxes[:, r // 2, r // 2] = 1
    mass = np.count_nonzero(boxes.reshape(40, -1), axis=1)
    counts, largest = fractal._cluster_stats(boxes, mass, "scipy")
    expected = [count_clusters(box[:r].tolist()) for box in boxes]
    assert counts.tolist() == [c for c, _ in expected]
    assert largest.tolist() == [s for _, s in expected]
    # The general path, used if a labeller numbered clusters in another order: shuffle the labels.
    labels, total = fractal.ndimage.label(boxes.reshape(-1, r))
    shuffle = np.concatenate(([0], rng.permutation(total) + 1)).astype(labels.dtype)
    counts2, largest2 = fractal._cluster_stats_general(shuffle[labels].reshape(40, -1), total, 40)
    assert counts2.tolist() == counts.tolist()
    assert largest2.tolist() == largest.tolist()


def test_uniform_image() -> None:
    img = np.full((20, 20, 3), 120, dtype=np.uint8)
    with pytest.warns(FractalWarning, match="lac curve descriptor.*area_ratio.*zero area"):
        out = fractal_features(img, 9)
    for r in box_sizes(9):
        assert out[f"lac_r{r}"] == 0.0
        assert out[f"fd_r{r}"] == pytest.approx(1.0 / (r * r), rel=1e-15)
        assert out[f"perc_clusters_r{r}"] == 1.0
        assert out[f"perc_percolating_r{r}"] == 1.0
        assert out[f"perc_largest_r{r}"] == 1.0
    assert out["lac_skewness"] == 0.0 and out["lac_max"] == 0.0 and out["lac_area"] == 0.0
    assert math.isnan(out["lac_area_ratio"])
    _assert_same(out, reference_features(img, 9))


def test_image_smaller_than_boxes_gives_nan_with_reason() -> None:
    with pytest.warns(FractalWarning, match=r"2x2 pixels, smaller than box size r=3\.\.9"):
        out = fractal_features(np.zeros((2, 2, 3), dtype=np.uint8), 9)
    assert list(out) == feature_names(9)
    assert all(math.isnan(v) for v in out.values())

    img = _noise(10, 12, 8)
    with pytest.warns(FractalWarning, match=r"10x12 pixels, smaller than box size r=11\.\.41"):
        out = fractal_features(img, 41)
    assert all(math.isfinite(out[f"lac_r{r}"]) for r in (3, 5, 7, 9))
    assert all(math.isnan(out[f"{f}_r{r}"]) for r in range(11, 42, 2) for f in ("lac", "fd", "perc_largest"))
    assert math.isnan(out["lac_area"]) and math.isnan(out["perc_clusters_max"])


def test_names_options_and_input_forms() -> None:
    img = _structured(16, 18, 9)
    full = _quiet(fractal_features, img, 8)  # even bound: r = 3, 5, 7
    assert box_sizes(8) == [3, 5, 7]
    assert list(full) == feature_names(8)
    assert "lac_r3" in full and "fd_r7" in full and "perc_percolating_r5" in full and "perc_largest_area" in full
    lacunarity_only = _quiet(fractal_features, img, 8, percolation=False)
    assert list(lacunarity_only) == feature_names(8, percolation=False)
    assert all(lacunarity_only[k] == full[k] for k in lacunarity_only)
    grey = _grey(15, 13, 10)
    as_rgb = _quiet(fractal_features, grey, 7)
    assert _identical(_quiet(fractal_features, grey[:, :, 0], 7), as_rgb)
    assert _identical(_quiet(fractal_features, grey.astype(np.int64), 7), as_rgb)


@pytest.mark.parametrize(("image", "max_box", "error"), [
    (np.zeros((8, 8, 4), dtype=np.uint8), 5, ValueError),
    (np.zeros((8,), dtype=np.uint8), 5, ValueError),
    (np.zeros((8, 8, 3), dtype=np.float32), 5, TypeError),
    (np.full((8, 8, 3), 300, dtype=np.int32), 5, ValueError),
    (np.zeros((8, 8, 3), dtype=np.uint8), 2, ValueError),
    (np.zeros((8, 8, 3), dtype=np.uint8), 5.0, TypeError),
])
def test_bad_input(image: np.ndarray, max_box, error: type[Exception]) -> None:
    with pytest.raises(error):
        fractal_features(image, max_box)


def test_bad_workers() -> None:
    with pytest.raises(ValueError, match="workers"):
        fractal_features(np.zeros((8, 8, 3), dtype=np.uint8), 5, workers=0)


def test_curve_descriptors_against_reference() -> None:
    x = [3, 5, 7, 9, 11, 13]
    y = [0.5, 0.25, 0.75, 1.0, 0.5, 0.125]
    got = curve_descriptors(x, y)
    # Hand check of the area: (13 - 3) / (2 * 6) * (0.75 + 1.0 + 1.75 + 1.5 + 0.625) = 4.6875
    assert got["area"] == pytest.approx(4.6875, rel=1e-15)
    assert got["area"] == pytest.approx(curve_area(x, y), rel=1e-14)
    assert got["skewness"] == pytest.approx(curve_skewness(y), rel=1e-12)
    assert got["area_ratio"] == pytest.approx(curve_area_ratio(x, y), rel=1e-14)
    assert got["max"] == 1.0
    flat = curve_descriptors(x, [0.3] * 6)
    assert flat["skewness"] == 0.0 and flat["area_ratio"] == pytest.approx(1.0, rel=1e-15)
    one = curve_descriptors([3], [0.2])
    assert one["area"] == 0.0 and math.isnan(one["area_ratio"]) and one["max"] == 0.2


def test_load_rgb(tmp_path) -> None:
    rgb = _noise(9, 7, 11)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    assert np.array_equal(load_rgb(tmp_path / "rgb.png"), rgb)

    rgba = np.concatenate([rgb, np.full((9, 7, 1), 128, dtype=np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(load_rgb(tmp_path / "rgba.png"), rgb)

    grey = rgb[:, :, 0]
    Image.fromarray(grey, "L").save(tmp_path / "grey.png")
    assert np.array_equal(load_rgb(tmp_path / "grey.png"), np.repeat(grey[:, :, None], 3, axis=2))

    deep = (np.arange(63, dtype=np.uint16).reshape(9, 7) * 1000)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    loaded = load_rgb(tmp_path / "deep.png")
    assert loaded.dtype == np.uint8 and loaded.shape == (9, 7, 3)
    assert np.array_equal(loaded[:, :, 1], np.rint(deep.astype(np.float64) * 255 / 65535).astype(np.uint8))

    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ImageError, match="not an image"):
        load_rgb(tmp_path / "junk.png")
    with pytest.raises(ImageError, match="not found"):
        load_rgb(tmp_path / "missing.png")
