"""``--type fractal`` end to end: columns, values (vs radfeat.extractors.fractal_math and the slow reference), formats, resume, errors."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pandas as pd
import pytest
from fractal_reference import reference_features
from helpers import radfeat, read_arff
from PIL import Image
from radfeat.extractors.fractal_math import feature_names, fractal_features
from radfeat.options import ExtractOptions, validate
from radfeat.pipeline.images import read_rgb as load_rgb
from radfeat.pipeline.run import extract

MAX_BOX = 7


@pytest.fixture
def data(tmp_path, make_patients):
    root = tmp_path / "data"
    images = make_patients(root, n_patients=2, per_folder=2, size=(40, 34))
    # a colour image and a 16-bit PNG go through the same code path
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (30, 26, 3), dtype=np.uint8)).save(images[0].with_name("colour.png"))
    Image.fromarray((np.add.outer(np.arange(28), np.arange(24)) * 900).astype(np.uint16)).save(
        images[1].with_name("deep16.png"))
    return root


def expected(path, max_box=MAX_BOX):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fractal_features(load_rgb(path), max_box, workers=1)


def test_cli_columns_values_and_reference(tmp_path, radfeat_home, data):
    ws = tmp_path / "ws"
    proc = radfeat("extract", str(data), "--type", "fractal", "--max-box", str(MAX_BOX), "--workspace", str(ws),
                   "--prefix", "tex", "--batch-size", "3", "--quiet")
    out = ws / "DATA" / "extracted_features" / "image_fractal_features.csv"  # the type's default name
    assert out.is_file(), proc.stderr
    table = pd.read_csv(out, dtype={"level_1": str})
    names = feature_names(MAX_BOX)
    assert list(table.columns) == ["level_1", "filename"] + [f"tex_fractal_{n}" for n in names]
    assert len(table) == 6
    for _, row in table.iterrows():
        want = expected(data / row["level_1"] / row["filename"])
        got = row[[f"tex_fractal_{n}" for n in names]].to_numpy(np.float64)
        np.testing.assert_allclose(got, [want[n] for n in names], rtol=1e-12, atol=0)
    # one image against the slow, literal reference implementation (independent of radfeat.extractors.fractal_math)
    row = table[table["filename"] == "colour.png"].iloc[0]
    ref = reference_features(load_rgb(data / row["level_1"] / "colour.png"), MAX_BOX)
    for name, value in ref.items():
        got = row[f"tex_fractal_{name}"]
        assert got == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), name
    prov = pd.read_json(out.with_suffix(".json"), typ="series")
    assert prov["type"] == "fractal" and prov["weights"] is None and prov["fractal"]["max_box"] == MAX_BOX
    assert prov["counts"]["ok"] == 6


def test_formats_parquet_and_arff(tmp_path, radfeat_home, data):
    ws = tmp_path / "ws"
    for fmt in ("csv", "parquet", "arff"):
        radfeat("extract", str(data), "--type", "fractal", "--max-box", "5", "--workspace", str(ws),
                "--format", fmt, "--filename", f"tex.{fmt}", "--quiet")
    folder = ws / "DATA" / "extracted_features"
    csv = pd.read_csv(folder / "tex.csv", dtype={"level_1": str})
    par = pd.read_parquet(folder / "tex.parquet")
    assert list(par.columns) == list(csv.columns)
    assert par[csv.columns[2]].dtype == np.float64  # fractal features keep double precision
    pd.testing.assert_frame_equal(par, csv, check_dtype=False)
    text = (folder / "tex.arff").read_text()
    assert "@RELATION 'tex'" in text and "@ATTRIBUTE 'filename' STRING" in text
    assert f"@ATTRIBUTE '{csv.columns[2]}' NUMERIC" in text
    columns, rows = read_arff(folder / "tex.arff")
    assert columns == list(csv.columns) and len(rows) == len(csv)
    got = pd.DataFrame(rows, columns=columns)
    got[columns[2:]] = got[columns[2:]].astype(float)  # '?' (missing) is read as None
    pd.testing.assert_frame_equal(got, csv, check_dtype=False)


def test_small_images_give_nan_and_bad_files_are_listed(tmp_path, radfeat_home, make_patients):
    root = tmp_path / "data"
    images = make_patients(root, n_patients=1, per_folder=1, size=(40, 34))
    Image.new("L", (6, 5), 7).save(images[0].with_name("tiny.png"))  # smaller than the 7x7 box
    (images[0].parent / "empty.jpg").write_bytes(b"")
    out = tmp_path / "t.arff"
    proc = radfeat("extract", str(root), "--type", "fractal", "--max-box", "7", "--output", str(out),
                   "--format", "arff", "--quiet")
    assert "smaller than box size r=7" in proc.stderr
    columns, rows = read_arff(out)
    tiny = dict(zip(columns, next(r for r in rows if r[1] == "tiny.png"), strict=True))
    assert tiny["img_fractal_lac_r7"] is None and tiny["img_fractal_lac_r3"] is not None  # NaN is '?' in ARFF
    errors = pd.read_csv(tmp_path / "t.errors.csv")
    assert [p.rsplit("/", 1)[-1] for p in errors["path"]] == ["empty.jpg"]


def test_cancel_then_resume_gives_the_same_table(tmp_path, radfeat_home, data):
    opts = ExtractOptions(input=str(data), type="fractal", max_box=5, output=str(tmp_path / "r.csv"), threads=1)
    cancel = threading.Event()

    def stop_after_two(p):
        if p.stage == "extracting" and p.done >= 2:
            cancel.set()

    first = extract(opts, progress=stop_after_two, cancel=cancel, log=lambda m: None)
    assert first.cancelled and 2 <= first.ok < 6 and (tmp_path / "r.csv.partial").is_file()
    second = extract(opts, log=lambda m: None)
    assert second.resumed == first.ok and second.ok == 6 and not (tmp_path / "r.csv.partial").exists()
    fresh = extract(opts, resume=False, output=str(tmp_path / "fresh.csv"), log=lambda m: None)
    assert fresh.ok == 6
    a = pd.read_csv(tmp_path / "r.csv").sort_values("filename").reset_index(drop=True)
    b = pd.read_csv(tmp_path / "fresh.csv").sort_values("filename").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"max_box": 8}, "max_box", "Largest box size must be an odd whole number between 3 and 255"),
    ({"max_box": 1}, "max_box", "Largest box size must be an odd whole number between 3 and 255"),
    ({"max_box": "41"}, "max_box", "Largest box size must be an odd whole number"),
    ({"precision": "int8"}, "precision", "int8 precision is available for DenseNet and encoder features only"),
    ({"type": "texture"}, "type", "Extraction type must be one of: densenet, encoder, onnx, fractal, saliency"),
    ({"format": "xlsx"}, "format", "Output format must be one of: csv, parquet, arff"),
    ({"format": "arff", "filename": "t.csv"}, "filename", "followed by .arff (e.g. image_extracted_features.arff)"),
])
def test_validation(tmp_path, radfeat_home, changes, field, message):
    opts = ExtractOptions(**{"input": str(tmp_path), "type": "fractal", **changes})
    problems = validate(opts)
    assert [p.field for p in problems] == [field], problems
    assert message in problems[0].message


def test_cli_refuses_even_box_before_work(tmp_path, radfeat_home, make_patients):
    make_patients(tmp_path / "data", n_patients=1, per_folder=1)
    proc = radfeat("extract", str(tmp_path / "data"), "--type", "fractal", "--max-box", "40", "--workspace",
                   str(tmp_path / "ws"), check=False)
    assert proc.returncode == 2 and "Largest box size must be an odd whole number" in proc.stderr
    assert not (tmp_path / "ws").exists()
