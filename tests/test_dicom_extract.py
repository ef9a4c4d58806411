"""DICOM through the whole pipeline: a mixed JPG/PNG/DICOM folder, tag columns, --views, master table from headers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dicom_support import encoder_available, make_dicom, set_transfer_syntax
from helpers import radfeat
from PIL import Image
from reference import load_xrv_model, xrv_dicom_input, xrv_input, xrv_outputs

pytest.importorskip("pydicom")


def mixed_folder(root: Path) -> dict[str, str]:
    """JPG, 16-bit PNG and DICOMs of every readable kind, plus DICOMs radfeat must refuse (name → reason)."""
    rng = np.random.default_rng(5)
    p1, p2 = root / "p1", root / "p2"
    p1.mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (100, 90), dtype=np.uint8)).save(p1 / "a.jpg", quality=95)
    Image.fromarray(rng.integers(0, 65536, (80, 110), dtype=np.uint16)).save(p1 / "b.png")
    make_dicom(p1 / "c.dcm", bits=12, photometric="MONOCHROME2", view="PA", patient="P1", seed=1)
    make_dicom(p1 / "D.DCM", bits=16, photometric="MONOCHROME1", view="AP", patient="P1", seed=2, shape=(120, 96))
    make_dicom(p2 / "IM0001", bits=12, photometric="MONOCHROME1", compress="rle", patient="P2", seed=3)
    if encoder_available("j2k"):
        make_dicom(p2 / "1.2.840.99.7", bits=16, compress="j2k", patient="P2", seed=4)
    if encoder_available("jpegls"):
        make_dicom(p2 / "e.dicom", bits=12, photometric="MONOCHROME1", compress="jpegls", patient="P2", seed=6)
    make_dicom(p2 / "multi.dcm", frames=2)
    make_dicom(p2 / "rgb.dcm", rgb=True, bits=8)
    make_dicom(p2 / "sr.dcm", no_pixels=True)
    set_transfer_syntax(make_dicom(p2 / "jxl.dcm"), "1.2.840.10008.1.2.4.100")
    (p2 / "notes.txt").write_text("ignored")
    return {"multi.dcm": "multi-frame DICOM", "rgb.dcm": "colour DICOM", "sr.dcm": "DICOM without pixel data",
            "jxl.dcm": "unsupported DICOM transfer syntax"}


def test_mixed_folder_matches_torchxrayvision(tmp_path, tiny_weights, tiny_checkpoint):
    root = tmp_path / "data"
    refused = mixed_folder(root)
    out = tmp_path / "t.csv"
    proc = radfeat("extract", str(root), "--weights", tiny_weights, "--output", str(out), "--quiet",
                   "--dicom-tags", "PatientID,ViewPosition")
    assert f"{len(refused)} failed" in proc.stdout
    table = pd.read_csv(out, dtype={"level_1": str, "PatientID": str, "ViewPosition": str})
    assert list(table.columns[:4]) == ["level_1", "filename", "PatientID", "ViewPosition"]
    dicoms = {"c.dcm", "D.DCM", "IM0001", "1.2.840.99.7", "e.dicom"} & set(table["filename"])
    assert {"a.jpg", "b.png", "c.dcm", "D.DCM", "IM0001"} <= set(table["filename"])
    assert len(table) == 2 + len(dicoms)
    model = load_xrv_model(tiny_checkpoint)
    dense = [c for c in table.columns if "_densefeatures_" in c]
    preds = [c for c in table.columns if "_predictions_" in c]
    for _, row in table.iterrows():
        path = root / row["level_1"] / row["filename"]
        is_dicom = row["filename"] in dicoms
        x = xrv_dicom_input(path) if is_dicom else xrv_input(path)
        ref_feats, ref_preds = xrv_outputs(model, x)
        assert np.max(np.abs(row[preds].to_numpy(np.float64) - ref_preds)) <= 1e-5, path
        assert np.max(np.abs(row[dense].to_numpy(np.float64) - ref_feats)) <= 1e-4 * np.max(np.abs(ref_feats)), path
        assert (row["PatientID"] == row["level_1"].upper()) if is_dicom else pd.isna(row["PatientID"])
    errors = pd.read_csv(out.with_name("t.errors.csv"))
    reasons = {Path(p).name: r for p, r in zip(errors["path"], errors["reason"], strict=True)}
    assert set(reasons) == set(refused)
    for name, words in refused.items():
        assert words in reasons[name]


def test_views_filter_counts_and_lists_the_others(tmp_path, tiny_weights):
    root = tmp_path / "data"
    make_dicom(root / "p1" / "pa.dcm", view="PA")
    make_dicom(root / "p1" / "ap.dcm", view="AP")
    make_dicom(root / "p1" / "noview.dcm", view=None)
    Image.new("L", (64, 64), 90).save(root / "p1" / "photo.jpg")
    out = tmp_path / "v.parquet"
    proc = radfeat("extract", str(root), "--weights", tiny_weights, "--output", str(out), "--format", "parquet",
                   "--views", "pa", "--dicom-tags", "ViewPosition,StudyDate", "--quiet")
    assert "3 skipped by --views" in proc.stdout
    table = pd.read_parquet(out)
    assert list(table["filename"]) == ["pa.dcm"]
    assert table["ViewPosition"].tolist() == ["PA"] and table["StudyDate"].tolist() == ["20240131"]
    assert table["img_predictions_0"].dtype == np.float32
    errors = pd.read_csv(out.with_name("v.errors.csv"))
    reasons = dict(zip(errors["path"].map(lambda p: Path(p).name), errors["reason"], strict=True))
    assert "ViewPosition AP is not one of the chosen views" in reasons["ap.dcm"]
    assert "no ViewPosition" in reasons["noview.dcm"] and "not a DICOM file" in reasons["photo.jpg"]
    import json

    assert json.loads(out.with_name("v.json").read_text())["counts"]["skipped"] == 3


def test_master_table_from_headers_equals_dates_csv(tmp_path, tiny_weights):
    root = tmp_path / "data"
    make_dicom(root / "p1" / "adm1" / "IM0001", acquisition_datetime="20230405061530", seed=1)
    make_dicom(root / "p1" / "adm2" / "IM0001", study_date="20230601", study_time="083000.5", seed=2)
    make_dicom(root / "p2" / "adm1" / "IM0001", study_date="20220110", study_time="2359", seed=3)
    make_dicom(root / "p2" / "adm1" / "IM0002", study_date=None, study_time=None, seed=4)  # no date
    common = ["extract", str(root), "--depth", "2", "--weights", tiny_weights, "--master-table", "--patient-level",
              "1", "--patient-id-int", "--quiet", "--date-column", "taken_at"]
    by_headers = tmp_path / "h.csv"
    proc = radfeat(*common, "--dates-from-dicom", "--output", str(by_headers))
    assert "1 image(s) without date" in proc.stdout
    # the same dates in a CSV; unique file names there, since a CSV joins on the file name
    flat = tmp_path / "flat"
    for i, (src, date) in enumerate([("p1/adm1/IM0001", "2023-04-05 06:15:30"),
                                     ("p1/adm2/IM0001", "2023-06-01 08:30:00.5"),
                                     ("p2/adm1/IM0001", "2022-01-10 23:59:00")]):
        dest = flat / src.replace("IM0001", f"f{i}.dcm")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((root / src).read_bytes())
        with open(tmp_path / "dates.csv", "a", encoding="utf-8") as fh:
            fh.write(("image,taken_at\n" if i == 0 else "") + f"{dest.name},{date}\n")
    by_csv = tmp_path / "c.csv"
    radfeat("extract", str(flat), *common[2:], "--dates", str(tmp_path / "dates.csv"), "--filename-column",
            "image", "--output", str(by_csv))
    a, b = pd.read_csv(by_headers), pd.read_csv(by_csv)
    assert list(a.columns[:2]) == ["level_1", "taken_at"] and len(a) == 3
    pd.testing.assert_frame_equal(a, b)
    by_patient = tmp_path / "pid.csv"
    radfeat(*common, "--dates-from-dicom", "--patient-from-dicom", "--output", str(by_patient))
    c = pd.read_csv(by_patient)
    assert list(c.columns[:2]) == ["PatientID", "taken_at"] and set(c["PatientID"]) == {1}  # P001 → 1
    # the page finds each master row's image back through the headers
    import json

    from radfeat.server.row_images import image_of_row

    prov = json.loads(by_patient.with_name("pid.json").read_text())
    got = [image_of_row(by_patient, list(c.columns), i, prov) for i in range(len(c))]
    assert got == [(root / p).resolve() for p in ("p1/adm1/IM0001", "p1/adm2/IM0001", "p2/adm1/IM0001")]


def test_dicom_options_are_refused_with_the_same_words(tmp_path, tiny_weights):
    from radfeat.options import ExtractOptions, validate

    root = tmp_path / "data"
    make_dicom(root / "p1" / "a.dcm")
    proc = radfeat("extract", str(root), "--weights", tiny_weights, "--dicom-tags", "PatientID,Bogus",
                   "--views", "P-A", check=False)
    assert proc.returncode == 2
    msgs = {p.message for p in validate(ExtractOptions(input=str(root), weights=tiny_weights,
                                                       dicom_tags=["PatientID", "Bogus"], views=["P-A"]))}
    assert msgs == {"Unknown DICOM tag keyword 'Bogus' (keywords are case-sensitive, e.g. PatientID, StudyDate)",
                    "Views must be DICOM ViewPosition codes such as PA, AP, LL"}
    for m in msgs:
        assert m in proc.stderr


def test_dicom_over_rpc_with_tags_views_and_thumbnail(tiny_weights, tiny_checkpoint, workspace, tmp_path):
    from helpers import serving

    root = tmp_path / "pacs"
    make_dicom(root / "p1" / "IM0001", bits=12, photometric="MONOCHROME1", window=(1500.0, 2000.0), seed=7)
    make_dicom(root / "p1" / "IM0002", view="LL", seed=8)
    Image.new("L", (64, 64), 90).save(root / "p1" / "photo.png")
    options = {"input": str(root), "weights": tiny_weights, "dicom_tags": ["PatientID", "StudyDate"],
               "views": ["PA"], "dicom_voi_lut": True, "filename": "pacs.csv"}
    with serving(workspace) as (_, rpc):
        bad = rpc("validate_options", options={**options, "dicom_tags": ["Bogus"]})
        assert bad["problems"] == [{"field": "dicom_tags", "message": "Unknown DICOM tag keyword 'Bogus' (keywords "
                                                                      "are case-sensitive, e.g. PatientID, StudyDate)"}]
        started = rpc("start_extraction", options=options)
        final = rpc.wait(started["job_id"], timeout=120)
        assert final["state"] == "done", final
        assert final["summary"]["ok"] == 1 and final["summary"]["skipped"] == 2 and final["summary"]["failed"] == 0
        page = rpc("read_table", path=final["output"])
        assert page["columns"][:4] == ["level_1", "filename", "PatientID", "StudyDate"]
        assert page["rows"][0][:4] == ["p1", "IM0001", "P001", "20240131"]
        thumb = rpc("thumbnail", path=str(root / "p1" / "IM0001"), size=32)
        assert thumb["data_url"].startswith("data:image/png;base64,") and thumb["original_width"] == 70
    model = load_xrv_model(tiny_checkpoint)
    _, ref_preds = xrv_outputs(model, xrv_dicom_input(root / "p1" / "IM0001", voi_lut=True))
    got = np.array([v for c, v in zip(page["columns"], page["rows"][0], strict=True) if "_predictions_" in c])
    assert np.max(np.abs(got - ref_preds)) <= 1e-5


def test_saliency_and_fractal_read_dicoms(tmp_path, tiny_weights, workspace):
    import radfeat

    root = tmp_path / "pacs"
    make_dicom(root / "p1" / "IM0001", bits=12, photometric="MONOCHROME1", compress="rle", seed=9)
    maps = radfeat.extract(input=str(root), type="saliency", weights=tiny_weights, workspace=str(workspace),
                           filename="maps.csv", pathologies=["Effusion"], styles=["overlay"])
    assert maps.ok == 1 and maps.failed == 0
    listing = pd.read_csv(maps.output)
    assert Path(listing["path"][0]).is_file() and "IM0001" in listing["path"][0]
    tex = radfeat.extract(input=str(root), type="fractal", max_box=5, workspace=str(workspace),
                          filename="tex.csv")
    assert tex.ok == 1 and pd.read_csv(tex.output)["img_fractal_fd_r3"].notna().all()
