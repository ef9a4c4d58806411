"""End-to-end through the CLI, compared with TorchXRayVision's own pipeline on the same files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import radfeat, read_arff
from PIL import Image
from reference import load_xrv_model, xrv_input, xrv_outputs


def compare_with_reference(table: pd.DataFrame, root: Path, depth: int, ckpt: Path, mode: str) -> None:
    model = load_xrv_model(ckpt)
    dense = [c for c in table.columns if "_densefeatures_" in c]
    preds = [c for c in table.columns if "_predictions_" in c]
    assert len(preds) == 18
    for _, row in table.iterrows():
        path = root.joinpath(*[str(row[f"level_{i}"]) for i in range(1, depth + 1)], row["filename"])
        ref_feats, ref_preds = xrv_outputs(model, xrv_input(path, mode))
        got_feats = row[dense].to_numpy(np.float64)
        got_preds = row[preds].to_numpy(np.float64)
        assert np.max(np.abs(got_preds - ref_preds)) <= 1e-5, path
        assert np.max(np.abs(got_feats - ref_feats)) <= 1e-4 * np.max(np.abs(ref_feats)), path


@pytest.mark.parametrize("depth", [1, 2])
def test_extract_matches_torchxrayvision(tmp_path, tiny_weights, tiny_checkpoint, make_patients, depth):
    root = tmp_path / "data"
    images = make_patients(root, depth=depth, n_patients=2, per_folder=2, size=(130, 97))
    # a colour image and a 16-bit PNG go through the same code path
    Image.fromarray(np.stack([np.asarray(Image.open(images[0]))] * 3, -1)).save(images[0].with_name("rgb.jpg"))
    ramp = (np.add.outer(np.arange(90), np.arange(70)) * 300).astype(np.uint16)
    Image.fromarray(ramp).save(images[1].with_name("deep16.png"))
    ws = tmp_path / "ws"
    radfeat("extract", str(root), "--depth", str(depth), "--weights", tiny_weights, "--workspace", str(ws),
            "--batch-size", "3", "--quiet")
    out = ws / "DATA" / "extracted_features" / "image_extracted_features.csv"
    table = pd.read_csv(out, dtype={f"level_{i}": str for i in range(1, depth + 1)})
    assert list(table.columns[: depth + 1]) == [f"level_{i}" for i in range(1, depth + 1)] + ["filename"]
    assert table.columns[depth + 1] == "img_densefeatures_0"
    assert table.columns[-1] == "img_predictions_17"
    assert len(table) == len(images) + 2
    assert table["filename"].is_unique
    compare_with_reference(table, root, depth, tiny_checkpoint, "xrv")
    prov = pd.read_json(out.with_name("image_extracted_features.json"), typ="series")
    assert prov["counts"]["ok"] == len(table) and prov["weights"]["name"] == tiny_weights
    assert prov["preprocess"] == "xrv" and prov["onnxruntime"]["provider"] == "CPUExecutionProvider"


def test_medomics_mode_and_families(tmp_path, tiny_weights, tiny_checkpoint, make_patients):
    root = tmp_path / "data"
    make_patients(root, n_patients=2, per_folder=2, size=(150, 111))
    out = tmp_path / "preds.csv"
    radfeat("extract", str(root), "--weights", tiny_weights, "--output", str(out), "--preprocess", "medomics",
            "--features", "predictions", "--prefix", "cxr2", "--quiet")
    table = pd.read_csv(out, dtype={"level_1": str})
    assert list(table.columns) == ["level_1", "filename"] + [f"cxr2_predictions_{i}" for i in range(18)]
    table["img_densefeatures_0"] = 0.0  # no dense family written: compare predictions only
    model = load_xrv_model(tiny_checkpoint)
    for _, row in table.iterrows():
        _, ref = xrv_outputs(model, xrv_input(root / row["level_1"] / row["filename"], "medomics"))
        got = row[[f"cxr2_predictions_{i}" for i in range(18)]].to_numpy(np.float64)
        assert np.max(np.abs(got - ref)) <= 1e-5
    # untrained heads (NaN operating point) give exactly 0.5, as TorchXRayVision does
    assert (table[["cxr2_predictions_2", "cxr2_predictions_5", "cxr2_predictions_6"]] == 0.5).all().all()


def test_master_table(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    dates = tmp_path / "dates.csv"
    make_patients(root, depth=2, n_patients=2, per_folder=1, dates_csv=dates)
    extra = root / "p2" / "adm1" / "undated.jpg"
    Image.new("L", (64, 64), 90).save(extra)
    with open(dates, "a", encoding="utf-8") as fh:
        fh.write("ghost.jpg,2022-01-01 10:00:00\ncxr_00001.jpg,not a date\n")
    ws = tmp_path / "ws"
    proc = radfeat("extract", str(root), "--depth", "2", "--weights", tiny_weights, "--workspace", str(ws),
                   "--master-table", "--dates", str(dates), "--filename-column", "image", "--date-column",
                   "taken_at", "--patient-level", "1", "--patient-id-int", "--filename", "master.csv", "--quiet")
    table = pd.read_csv(ws / "DATA" / "extracted_features" / "master.csv")
    assert list(table.columns[:3]) == ["level_1", "taken_at", "img_densefeatures_0"]
    assert "filename" not in table.columns and "level_2" not in table.columns
    assert sorted(table["level_1"].unique()) == [1, 2]
    assert len(table) == 4 + 1  # 4 dated images, one of them listed twice in the dates CSV
    assert "1 image(s) without date" in proc.stdout and "1 date(s) without image" in proc.stdout
    assert "1 unparseable date(s)" in proc.stdout
    unmatched = pd.read_csv(ws / "DATA" / "extracted_features" / "master.unmatched.csv")
    assert {"image without date", "date without image", "unparseable date"} <= set(unmatched["issue"])


def test_bad_files_are_reported_and_run_goes_on(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    good = make_patients(root, n_patients=2, per_folder=2)
    folder = good[0].parent
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("this is not an image")
    data = good[1].read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / ".hidden.jpg").write_bytes(data)
    (folder / "UPPER.JPEG").write_bytes(data)
    out = tmp_path / "t.csv"
    proc = radfeat("extract", str(root), "--weights", tiny_weights, "--output", str(out), "--quiet")
    table = pd.read_csv(out)
    assert len(table) == len(good) + 1
    errors = pd.read_csv(tmp_path / "t.errors.csv")
    reasons = dict(zip(errors["path"].map(lambda p: Path(p).name), errors["reason"], strict=True))
    assert set(reasons) == {"empty.jpg", "notes.jpg", "truncated.jpg"}
    assert "empty" in reasons["empty.jpg"] and "not an image" in reasons["notes.jpg"]
    assert "truncated" in reasons["truncated.jpg"]
    assert "3 failed" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prefix", "img-1"], "Column prefix may contain only letters, digits and underscores"),
        (["--filename", "bad name.csv"], "File name must be letters, digits or underscores"),
        (["--depth", "0"], "Folder depth must be a whole number of at least 1"),
        (["--depth", "two"], "Folder depth must be a whole number of at least 1"),
        (["--weights", "densenet121-res224-chx"], "Did you mean 'densenet121-res224-chex'"),
        (["--features", "none"], "Unknown feature family"),
        (["--master-table"], "Master table needs a CSV of image dates"),
        pytest.param(["--device", "cuda"], "CUDA was requested but this ONNX Runtime has no CUDAExecutionProvider",
                     marks=pytest.mark.skipif("CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers(),
                                              reason="this machine has CUDA")),
    ],
)
def test_invalid_options_refused_before_work(tmp_path, radfeat_home, make_patients, args, message):
    root = tmp_path / "data"
    make_patients(root, n_patients=1, per_folder=1)
    ws = tmp_path / "ws"
    proc = radfeat("extract", str(root), "--workspace", str(ws), *args, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not ws.exists()


def test_missing_input_and_empty_folder(tmp_path, tiny_weights):
    proc = radfeat("extract", str(tmp_path / "nope"), "--weights", tiny_weights, check=False)
    assert proc.returncode == 2 and "Input folder not found" in proc.stderr
    (tmp_path / "empty" / "p1").mkdir(parents=True)
    proc = radfeat("extract", str(tmp_path / "empty"), "--weights", tiny_weights, check=False)
    assert proc.returncode == 2 and "No images found 1 folder level below" in proc.stderr


def test_full_densenet121_columns(tmp_path, radfeat_home, make_patients):
    """A full-size random DenseNet-121 gives the 1024 + 18 MEDomics columns."""
    from radfeat.synthetic import random_checkpoint
    from radfeat.weights.registration import add_weights

    ckpt = random_checkpoint(tmp_path / "full.pt", seed=3)
    add_weights("full-random", ckpt, log=lambda m: None)
    root = tmp_path / "data"
    make_patients(root, n_patients=1, per_folder=2, size=(240, 260))
    out = tmp_path / "full.parquet"
    radfeat("extract", str(root), "--weights", "full-random", "--output", str(out), "--format", "parquet",
            "--quiet")
    table = pd.read_parquet(out)
    assert table.shape == (2, 2 + 1024 + 18)
    assert table.columns[2] == "img_densefeatures_0" and table.columns[2 + 1023] == "img_densefeatures_1023"
    compare_with_reference(table, root, 1, ckpt, "xrv")


def test_int8_mode_is_opt_in_and_close(tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    make_patients(root, n_patients=2, per_folder=2, size=(200, 180))
    exact, fast = tmp_path / "exact.csv", tmp_path / "fast.csv"
    radfeat("extract", str(root), "--weights", tiny_weights, "--output", str(exact), "--quiet")
    proc = radfeat("extract", str(root), "--weights", tiny_weights, "--output", str(fast), "--precision", "int8",
                   "--quiet")
    assert "Building the int8 model" in proc.stderr
    a, b = pd.read_csv(exact), pd.read_csv(fast)
    dense = [c for c in a.columns if "_densefeatures_" in c]
    fa, fb = a[dense].to_numpy(), b[dense].to_numpy()
    assert not np.array_equal(fa, fb)  # really a different (approximate) model
    assert np.corrcoef(fa.ravel(), fb.ravel())[0, 1] > 0.99
    assert pd.read_json(fast.with_name("fast.json"), typ="series")["precision"] == "int8"


@pytest.mark.parametrize("fmt", ["parquet", "arff"])
def test_master_table_other_formats(tmp_path, tiny_weights, make_patients, fmt):
    """Master tables in Parquet/ARFF: same rows and columns as the CSV, numbers as float32, ids as numbers."""
    root = tmp_path / "data"
    dates = tmp_path / "dates.csv"
    make_patients(root, n_patients=2, per_folder=2, dates_csv=dates)
    common = ["extract", str(root), "--weights", tiny_weights, "--master-table", "--dates", str(dates),
              "--filename-column", "image", "--date-column", "taken_at", "--patient-id-int", "--quiet"]
    radfeat(*common, "--output", str(tmp_path / "m.csv"))
    radfeat(*common, "--output", str(tmp_path / f"m.{fmt}"), "--format", fmt)
    ref = pd.read_csv(tmp_path / "m.csv")
    if fmt == "parquet":
        got = pd.read_parquet(tmp_path / "m.parquet")
        assert str(got["img_densefeatures_0"].dtype) == "float32" and str(got["level_1"].dtype) == "int64"
        assert got["taken_at"].tolist() == ref["taken_at"].tolist()
    else:
        columns, rows = read_arff(tmp_path / "m.arff")
        text = (tmp_path / "m.arff").read_text()
        assert "@ATTRIBUTE 'level_1' NUMERIC" in text and "@ATTRIBUTE 'taken_at' STRING" in text
        got = pd.DataFrame(rows, columns=columns)
    assert list(got.columns) == list(ref.columns) and len(got) == len(ref) == 4
    num = [c for c in ref.columns if c.startswith("img_")]
    np.testing.assert_allclose(got[num].to_numpy(np.float64), ref[num].to_numpy(np.float64), rtol=1e-6)
    assert not list((tmp_path).glob("*.master.tmp"))
