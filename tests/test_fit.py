"""radfeat fit: grouped cross-validation, honest metrics, ONNX heads equal to scikit-learn."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")

from helpers import synthetic_table  # noqa: E402
from radfeat.cli import main  # noqa: E402
from radfeat.fit.data import load  # noqa: E402
from radfeat.fit.head import Head, HeadError  # noqa: E402
from radfeat.fit.options import FitOptions  # noqa: E402
from radfeat.fit.run import fit_model  # noqa: E402
from radfeat.fit.validation import splits, train  # noqa: E402
from radfeat.options import OptionsError  # noqa: E402


def test_separable_signal_is_found(tmp_path: Path) -> None:
    table, labels = synthetic_table(tmp_path)
    s = fit_model(FitOptions(table=str(table), labels=str(labels), target="effusion", workspace=str(tmp_path)),
                  log=lambda m: None)
    for kind in ("logistic", "mlp"):
        assert s.models[kind]["auc"]["mean"] >= 0.95, s.models[kind]
        assert s.models[kind]["onnx_max_abs_diff"] < 1e-6
    out = Path(s.output_dir)
    assert out == (tmp_path / "DATA" / "models" / "features_effusion").resolve()
    assert {"logistic.onnx", "mlp.onnx", "metrics.json", "folds.csv", "predictions.csv", "roc.png"} <= \
        {p.name for p in out.iterdir()}
    meta = json.loads((out / "metrics.json").read_text())
    assert meta["data"]["classes"] == ["no", "yes"] and meta["data"]["patients"] == 40
    assert not list(out.parent.glob(".*"))  # no staging folder left behind


def test_shuffled_labels_give_chance(tmp_path: Path) -> None:
    table, labels = synthetic_table(tmp_path, shuffle=True, seed=3)
    s = fit_model(FitOptions(table=str(table), labels=str(labels), target="effusion", models=["logistic"],
                             workspace=str(tmp_path)), log=lambda m: None)
    auc = s.models["logistic"]["auc"]
    assert auc["ci_low"] <= 0.5 <= auc["ci_high"], auc
    assert abs(auc["mean"] - 0.5) < 0.2


def test_no_patient_in_train_and_test(tmp_path: Path) -> None:
    table, labels = synthetic_table(tmp_path, n_patients=30, per_patient=4)
    data = load(FitOptions(table=str(table), labels=str(labels), target="effusion"))
    parts = splits(data, 5, seed=7)
    tested = np.concatenate([te for _, te in parts])
    assert sorted(tested) == list(range(len(data.y)))  # every row tested exactly once
    for tr, te in parts:
        assert not set(data.groups[tr]) & set(data.groups[te])
        assert set(data.y[te]) == {0, 1}
    # the written predictions say the same: one fold per patient
    s = fit_model(FitOptions(table=str(table), labels=str(labels), target="effusion", models=["logistic"],
                             workspace=str(tmp_path)), log=lambda m: None)
    with open(Path(s.output_dir) / "predictions.csv") as fh:
        rows = list(csv.DictReader(fh))
    folds_of: dict[str, set[str]] = {}
    for r in rows:
        folds_of.setdefault(r["level_1"], set()).add(r["fold"])
    assert len(rows) == 120 and all(len(f) == 1 for f in folds_of.values())


def test_onnx_head_equals_predict_proba_with_missing_values(tmp_path: Path) -> None:
    table, labels = synthetic_table(tmp_path, n_features=30)
    data = load(FitOptions(table=str(table), labels=str(labels), target="effusion"))
    rng = np.random.default_rng(1)
    x = data.x.copy()
    x[rng.random(x.shape) < 0.05] = np.nan
    from radfeat.fit.head import to_onnx

    for kind in ("logistic", "mlp"):
        model = train(kind, x, data.y, seed=0)
        path = tmp_path / f"{kind}.onnx"
        path.write_bytes(to_onnx(model, data.columns, {"name": kind}))
        head = Head.load(path)
        assert head.columns == data.columns
        expected = model.pipeline.predict_proba(np.where(np.isnan(x), model.medians, x))[:, 1]
        np.testing.assert_allclose(head.scores(x), expected, rtol=0, atol=1e-6)


def test_too_few_patients_is_refused(tmp_path: Path) -> None:
    table, labels = synthetic_table(tmp_path, n_patients=6)
    with pytest.raises(OptionsError, match=r"Class 'no' has 3 patient\(s\); 5-fold cross-validation grouped by "
                                           r"patient needs at least 5"):
        fit_model(FitOptions(table=str(table), labels=str(labels), target="effusion", workspace=str(tmp_path)))
    assert not (tmp_path / "DATA").exists()


def test_bad_target_and_labels_are_refused(tmp_path: Path) -> None:
    table, labels = synthetic_table(tmp_path, n_patients=10)
    with pytest.raises(OptionsError, match="Column 'nope' is not in the labels CSV"):
        load(FitOptions(table=str(table), labels=str(labels), target="nope"))
    three = tmp_path / "three.csv"
    three.write_text("filename,grade\n" + "".join(f"cxr_p{p}_0.jpg,{p % 3}\n" for p in range(10)))
    with pytest.raises(OptionsError, match="exactly two values; it has 3"):
        load(FitOptions(table=str(table), labels=str(three), target="grade"))


def test_cli_fit_and_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table, labels = synthetic_table(tmp_path, n_patients=12)
    rc = main(["fit", str(table), "--labels", str(labels), "--target", "effusion", "--folds", "3",
               "--models", "logistic", "--workspace", str(tmp_path), "--name", "eff"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "logistic: AUC" in out.out and (tmp_path / "DATA" / "models" / "eff" / "logistic.onnx").is_file()
    rc = main(["fit", str(table), "--labels", str(labels), "--target", "effusion", "--folds", "9"])
    assert rc == 2 and "needs at least 9" in capsys.readouterr().err


def test_head_file_that_is_not_a_head(tmp_path: Path) -> None:
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"not onnx")
    with pytest.raises(HeadError, match="not a readable ONNX model"):
        Head.load(bad)


def test_extract_with_head_adds_scores_equal_to_scikit_learn(tmp_path: Path, radfeat_home: Path,
                                                              make_patients, capsys: pytest.CaptureFixture[str]):
    """fractal table → fit → a later run with --head: its column is the head's score of each row."""
    import pandas as pd
    from radfeat.options import ExtractOptions
    from radfeat.pipeline.run import extract

    data = tmp_path / "cxr"
    make_patients(data, n_patients=8, per_folder=2, size=(40, 36))
    ws = tmp_path / "ws"
    first = extract(ExtractOptions(input=str(data), type="fractal", max_box=5, workspace=str(ws),
                                   filename="frac.csv", threads=1), log=lambda m: None)
    table = pd.read_csv(first.output, dtype={"level_1": str})
    labels = tmp_path / "labels.csv"
    labels.write_text("level_1,sick\n" + "".join(f"p{p},{p % 2}\n" for p in range(1, 9)))
    fitted = fit_model(FitOptions(table=first.output, labels=str(labels), target="sick", folds=3, models=["logistic"],
                                  columns=["img_fractal_lac_*", "img_fractal_fd_*"], workspace=str(ws), name="frac"),
                       log=lambda m: None)
    head_path = fitted.models["logistic"]["head"]
    rc = main(["extract", str(data), "--type", "fractal", "--max-box", "5", "--workspace", str(ws), "--filename",
               "scored.csv", "--threads", "1", "--quiet", "--head", head_path])
    assert rc == 0, capsys.readouterr().err
    scored = pd.read_csv(ws / "DATA" / "extracted_features" / "scored.csv", dtype={"level_1": str})
    assert list(scored.columns) == [*table.columns, "img_head_frac_logistic"]
    head = Head.load(head_path)
    expected = head.scores(table[head.columns].to_numpy(np.float64))
    np.testing.assert_allclose(scored["img_head_frac_logistic"], expected, rtol=0, atol=1e-6)
    prov = json.loads((ws / "DATA" / "extracted_features" / "scored.json").read_text())
    assert prov["heads"][0]["name"] == "frac_logistic" and prov["heads"][0]["target"] == "sick"
    # a head whose columns the run does not make is refused before any image, naming them
    rc = main(["extract", str(data), "--type", "fractal", "--max-box", "3", "--workspace", str(ws), "--filename",
               "r3.csv", "--quiet", "--head", head_path])
    err = capsys.readouterr().err
    assert rc == 2 and "Head 'frac_logistic' needs columns this run does not make: img_fractal_lac_r5" in err
    assert not (ws / "DATA" / "extracted_features" / "r3.csv").exists()
    rc = main(["extract", str(data), "--type", "fractal", "--head", str(tmp_path / "labels.csv"), "--quiet"])
    assert rc == 2 and "labels.csv is not a readable ONNX model" in capsys.readouterr().err


def test_rpc_fit_model_job_then_extraction_with_the_head(tmp_path: Path, radfeat_home: Path, make_patients) -> None:
    """Over HTTP: validate_fit words, fit_model as a job, list_fitted_models, start_extraction with --head."""
    import pandas as pd
    from helpers import serving
    from radfeat.options import ExtractOptions
    from radfeat.pipeline.run import extract

    ws = tmp_path / "ws"
    data = ws / "cxr"
    make_patients(data, n_patients=8, per_folder=2, size=(40, 36))
    table = extract(ExtractOptions(input=str(data), type="fractal", max_box=3, workspace=str(ws), filename="f.csv",
                                   threads=1), log=lambda m: None).output
    labels = ws / "labels.csv"
    labels.write_text("level_1,sick\n" + "".join(f"p{p},{'yes' if p % 2 else 'no'}\n" for p in range(1, 9)))
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("level_1,sick\n")
    with serving(ws) as (_, rpc):
        v = rpc("validate_fit", options={"table": table, "labels": str(outside), "target": "sick", "folds": 1})
        assert not v["valid"]
        assert {p["field"] for p in v["problems"]} == {"labels", "folds"}
        ans = rpc.raw("fit_model", options={"table": table, "labels": "labels.csv", "target": "sick", "folds": 21})
        assert ans["error"]["code"] == -32000 and "Folds must be a whole number between 2 and 20" in ans["error"]["message"]
        opts = {"table": table, "labels": "labels.csv", "target": "sick", "folds": 3, "models": ["logistic"],
                "name": "sick"}
        job = rpc("fit_model", options=opts)
        st = rpc.wait(job["job_id"], timeout=120)
        assert st["state"] == "done" and st["kind"] == "fit", st
        assert st["summary"]["models"]["logistic"]["onnx_max_abs_diff"] < 1e-6
        listed = rpc("list_fitted_models")["models"]
        assert [m["name"] for m in listed] == ["sick"] and listed[0]["classes"] == ["no", "yes"]
        head = listed[0]["models"]["logistic"]["head"]
        run = rpc("start_extraction", options={"input": str(data), "type": "fractal", "max_box": 3,
                                               "filename": "scored.csv", "threads": 1, "head": [head]})
        assert rpc.wait(run["job_id"], timeout=120)["state"] == "done"
        # too few patients for the folds: the job fails with the same words as the CLI
        job = rpc("fit_model", options={**opts, "folds": 5, "name": "five"})
        st = rpc.wait(job["job_id"], timeout=60)
        assert st["state"] == "failed" and "has 4 patient(s); 5-fold cross-validation" in st["error"]
        assert st["problems"] == [{"field": "folds", "message": st["error"]}]
    scored = pd.read_csv(run["output"], dtype={"level_1": str})
    assert "img_head_sick_logistic" in scored.columns and scored["img_head_sick_logistic"].between(0, 1).all()


def test_parquet_and_arff_tables_read_like_csv(tmp_path: Path) -> None:
    import pandas as pd
    from radfeat.output.formats import write_arff_from_csv

    table, labels = synthetic_table(tmp_path, n_patients=12)
    pd.read_csv(table, dtype={"level_1": str}).to_parquet(tmp_path / "f.parquet")
    write_arff_from_csv(table, tmp_path / "f.arff", text_columns=["level_1", "filename"])
    want = load(FitOptions(table=str(table), labels=str(labels), target="effusion", folds=3))
    for other in ("f.parquet", "f.arff"):
        got = load(FitOptions(table=str(tmp_path / other), labels=str(labels), target="effusion", folds=3))
        assert got.columns == want.columns and got.keys == want.keys
        np.testing.assert_array_equal(got.x, want.x)
        np.testing.assert_array_equal(got.y, want.y)


def test_master_table_patient_column_and_date_are_handled(tmp_path: Path) -> None:
    """A master table (patient column level_K first, the date second): grouped by it, the date is no feature."""
    import pandas as pd

    table, labels = synthetic_table(tmp_path, n_patients=12)
    df = pd.read_csv(table, dtype={"level_1": str})
    master = df.drop(columns=["filename"]).rename(columns={"level_1": "level_2"})
    master.insert(1, "taken_at", [f"2021-01-{1 + i % 28:02d} 08:00:00" for i in range(len(master))])
    master.to_csv(tmp_path / "master.csv", index=False)
    lab = pd.read_csv(labels)
    lab["level_2"] = lab["filename"].str.extract(r"cxr_(p\d+)_")[0]
    lab.drop_duplicates("level_2")[["level_2", "effusion"]].to_csv(tmp_path / "patients.csv", index=False)
    data = load(FitOptions(table=str(tmp_path / "master.csv"), labels=str(tmp_path / "patients.csv"),
                           target="effusion", folds=3))
    assert data.group_column == "level_2" and data.report["join"] == "level_2"
    assert "taken_at" not in data.columns and len(data.columns) == 12 and len(data.y) == 36


def test_missing_fit_extra_is_refused_with_the_install_line(tmp_path: Path, monkeypatch) -> None:
    import sys

    table, labels = synthetic_table(tmp_path, n_patients=12)
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # as if the fit extra were not installed
    with pytest.raises(OptionsError, match=r"not installed: skl2onnx\); install them with: pip install 'radfeat\[fit\]'"):
        fit_model(FitOptions(table=str(table), labels=str(labels), target="effusion", workspace=str(tmp_path)))
