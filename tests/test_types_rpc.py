"""Every new extraction type once through the JSON-RPC backend (``start_extraction`` → ``job_status``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
import torch
from helpers import read_arff, serving


@pytest.fixture
def patients(tmp_path: Path, make_patients) -> Path:
    root = tmp_path / "patients"
    make_patients(root, n_patients=2, per_folder=2, size=(64, 56))
    return root


def run_job(rpc, options: dict) -> dict:
    started = rpc("start_extraction", options=options)
    final = rpc.wait(started["job_id"], timeout=120)
    assert final["state"] == "done", final
    return {**final, "weights": started["weights"]}


def test_fractal_over_rpc_with_arff(radfeat_home, workspace, patients):
    with serving(workspace) as (_, rpc):
        bad = rpc("validate_options", options={"input": str(patients), "type": "fractal", "max_box": 4})
        assert not bad["valid"] and bad["problems"] == [
            {"field": "max_box", "message": "Largest box size must be an odd whole number between 3 and 255"}]
        ok = rpc("validate_options", options={"input": str(patients), "type": "fractal", "format": "arff",
                                              "output": "DATA/extracted_features/tex.arff"})
        assert ok["valid"], ok
        final = run_job(rpc, {"input": str(patients), "type": "fractal", "max_box": 5, "format": "arff",
                              "filename": "tex.arff", "threads": 1})
    assert final["weights"] == "fractal" and final["summary"]["ok"] == 4
    columns, rows = read_arff(Path(final["output"]))
    assert len(rows) == 4 and columns[2] == "img_fractal_lac_r3"


def test_saliency_over_rpc_and_thumbnail_of_a_map(tiny_weights, workspace, patients):
    with serving(workspace) as (_, rpc):
        final = run_job(rpc, {"input": str(patients), "type": "saliency", "weights": tiny_weights,
                              "pathologies": ["Effusion"], "saliency_methods": ["gradcam", "eigencam"],
                              "styles": ["overlay"], "filename": "maps.csv"})
        page = rpc("read_table", path=final["output"], limit=100)
        assert page["columns"] == ["level_1", "filename", "pathology", "method", "style", "prediction", "path"]
        assert page["total"] == 4 * 2
        path = page["rows"][0][-1]
        assert path.startswith(str(workspace / "DATA" / "saliency" / "maps"))
        thumb = rpc("thumbnail", path=path, size=64)
        assert thumb["data_url"].startswith("data:image/png;base64,")
        assert thumb["original_width"] == thumb["original_height"] == 56  # the centre crop of a 64 × 56 image


def test_encoder_over_rpc(radfeat_home, workspace, patients, tmp_path):
    from radfeat.weights.registration import add_weights
    from radfeat.xrv_compat import import_xrv

    ae = import_xrv().autoencoders
    model = ae._ResNetAE(ae.Bottleneck, ae.DeconvBottleneck, [1, 1, 1, 1], 1)
    torch.save(model.state_dict(), tmp_path / "ae.pt")
    add_weights("ae-rpc", tmp_path / "ae.pt", log=lambda m: None)
    with serving(workspace) as (_, rpc):
        final = run_job(rpc, {"input": str(patients), "type": "encoder", "weights": "ae-rpc", "features": ["dense"],
                              "format": "parquet", "filename": "latent.parquet"})
    table = pd.read_parquet(final["output"])
    assert table.shape == (4, 2 + 4608) and table.columns[2] == "img_latent_0"


def test_onnx_over_rpc(radfeat_home, workspace, patients, tmp_path):
    from radfeat.weights.registration import add_onnx

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.zeros(1, 1, 24, 24),), str(tmp_path / "m.onnx"), input_names=["x"],
                          output_names=["emb"], dynamic_axes={"x": {0: "n"}, "emb": {0: "n"}}, opset_version=17,
                          dynamo=False)
    add_onnx("onnx-rpc", tmp_path / "m.onnx", log=lambda m: None)
    with serving(workspace) as (_, rpc):
        final = run_job(rpc, {"input": str(patients), "type": "onnx", "weights": "onnx-rpc", "filename": "emb.csv"})
    table = pd.read_csv(final["output"])
    assert list(table.columns) == ["level_1", "filename", "img_emb_0", "img_emb_1", "img_emb_2"]
    assert len(table) == 4 and final["options"]["type"] == "onnx"
