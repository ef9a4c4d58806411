"""``--type encoder``: TorchXRayVision's ResNet-50 and ResNet autoencoder through export-to-ONNX-on-first-use.

Random-initialised networks of the real architectures are saved where a download would put them (the
catalog's file names in the test home), run through the CLI, and compared with TorchXRayVision's own
classes built by TorchXRayVision's own constructors from the same files.
"""

from __future__ import annotations

import ast
import math
import shutil
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import radfeat
from radfeat.options import ExtractOptions, validate
from radfeat.weights.architectures import block_counts, detect_architecture
from radfeat.weights.catalog import Catalog
from radfeat.xrv_compat import import_xrv
from reference import randomise_batchnorm
from reference import xrv_input as reference_input

xrv = import_xrv()


def xrv_input(path: Path, size: int) -> np.ndarray:
    """TorchXRayVision's own preprocessing (tests/reference.py) at ``size``, as the float32 the models take."""
    return reference_input(path, "xrv", size).astype(np.float32)


@pytest.fixture(scope="module")
def patients(tmp_path_factory):
    from radfeat.synthetic import make_dataset

    root = tmp_path_factory.mktemp("enc") / "data"
    make_dataset(root, n_patients=1, per_folder=2, size=(530, 520), seed=4)
    return root


def test_torchvision_stand_in_is_torchvision(tmp_path):
    """xrv_compat's resnet50 has torchvision's module tree and numbers (checked against torchvision's source)."""
    import sys

    tv_src = Path(torch.__file__).parents[1] / "torchvision" / "models" / "resnet.py"
    if not tv_src.is_file():
        pytest.skip("torchvision's source is not installed")
    tree = ast.parse(tv_src.read_text())
    keep = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))
            and n.name in ("conv3x3", "conv1x1", "BasicBlock", "Bottleneck", "ResNet")]
    ns = {"torch": torch, "nn": torch.nn, "Tensor": torch.Tensor, "_log_api_usage_once": lambda m: None,
          **{k: getattr(typing, k) for k in ("Optional", "Callable", "Union", "Any")}}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(tv_src), "exec"), ns)  # noqa: S102 - torchvision's own code
    torch.manual_seed(0)
    ref = ns["ResNet"](ns["Bottleneck"], [3, 4, 6, 3], num_classes=18).eval()
    ours = sys.modules["torchvision"].models.resnet50(num_classes=18, weights=None).eval()
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert all(ours.state_dict()[k].shape == v.shape for k, v in ref.state_dict().items())
    randomise_batchnorm(ref, 1)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(ours(x), ref(x))


def test_catalog_entries_match_torchxrayvision():
    cat = Catalog()
    rn = cat.get("resnet50-res512-all")
    meta = xrv.models.model_urls["resnet50-res512-all"]
    assert rn.architecture == "resnet50" and rn.input_size == 512 and rn.url == meta["weights_url"]
    assert rn.file == Path(meta["weights_url"]).name
    for label, thr, want_label, want_thr in zip(rn.labels, rn.op_threshs, meta["labels"], meta["op_threshs"],
                                               strict=True):
        assert (thr is None) == math.isnan(want_thr)
        assert label == ("" if thr is None else want_label)
        assert thr is None or thr == pytest.approx(want_thr)
    ae = cat.get("101-elastic")
    ae_meta = xrv.autoencoders.model_urls["101-elastic"]
    assert ae.architecture == "resnet-ae" and ae.input_size == ae_meta["resolution"] == 224
    assert ae.url == ae_meta["weights_url"] and ae.file == Path(ae_meta["weights_url"]).name
    assert ae.trained_labels == [] and ae.op_threshs is None
    state = xrv.autoencoders.ResNetAE101().state_dict()
    assert detect_architecture(state) == "resnet-ae" and block_counts(state) == (3, 4, 23, 2)


def test_densenet_catalog_entries_match_torchxrayvision():
    """The seven DenseNet entries: address, file, input size, labels and operating points as xrv has them."""
    dense = [ws for ws in Catalog().entries() if ws.architecture == "densenet121" and ws.source == "catalog"]
    assert len(dense) == 7
    for ws in dense:
        meta = xrv.models.model_urls[ws.name]
        assert ws.url == meta["weights_url"] and ws.file == Path(meta["weights_url"]).name, ws.name
        assert ws.input_size == meta["input_resolution"] == 224, ws.name
        assert list(ws.labels) == list(meta["labels"]), ws.name
        for thr, want in zip(ws.op_threshs, meta["op_threshs"], strict=True):
            assert (thr is None) == math.isnan(want), ws.name
            assert thr is None or thr == pytest.approx(want), ws.name


def test_resnet50_matches_torchxrayvision(tmp_path, radfeat_home, patients):
    ws = Catalog().get("resnet50-res512-all")
    torch.manual_seed(5)
    net = __import__("sys").modules["torchvision"].models.resnet50(num_classes=18, weights=None)
    net.conv1 = torch.nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    randomise_batchnorm(net, 5)
    net.eval()
    x0 = torch.from_numpy(xrv_input(next(patients.rglob("*.jpg")), 512))[None]
    with torch.no_grad():  # keep the random logits around 0 so the calibrated predictions are informative
        net.fc.bias.zero_()
        net.fc.weight.mul_(0.5 / float(net(x0).std()))
    torch.save(net.state_dict(), ws.path)  # where 'radfeat models fetch' would put it
    cache = tmp_path / "xrv-cache"
    cache.mkdir()
    shutil.copyfile(ws.path, cache / ws.file)

    out = tmp_path / "rn.csv"
    proc = radfeat("extract", str(patients), "--weights", ws.name, "--output", str(out), "--quiet")  # no --type
    table = pd.read_csv(out, dtype={"level_1": str})
    assert list(table.columns[2:4]) == ["img_resnetfeatures_0", "img_resnetfeatures_1"]
    assert table.shape == (2, 2 + 2048 + 18) and table.columns[-1] == "img_predictions_17"
    assert "ONNX check on a probe batch" in proc.stderr

    model = xrv.models.ResNet(weights="resnet50-res512-all", cache_dir=str(cache))  # TorchXRayVision's loader
    feat_cols = [c for c in table.columns if "_resnetfeatures_" in c]
    pred_cols = [c for c in table.columns if "_predictions_" in c]
    spread = []
    for _, row in table.iterrows():
        x = torch.from_numpy(xrv_input(patients / row["level_1"] / row["filename"], 512))[None]
        with torch.no_grad():
            ref_feats = model.features(x.clone()).numpy()[0]
            ref_preds = model(x.clone()).numpy()[0]
        got_f = row[feat_cols].to_numpy(np.float64)
        got_p = row[pred_cols].to_numpy(np.float64)
        assert np.max(np.abs(got_p - ref_preds)) <= 1e-5
        assert np.max(np.abs(got_f - ref_feats)) <= 1e-4 * np.max(np.abs(ref_feats))
        spread.append(ref_preds)
    spread = np.asarray(spread)
    assert np.all(spread[:, [14, 17]] == 0.5)  # untrained heads (NaN operating point)
    assert 0.05 < spread[:, :14].mean() < 0.95  # the test is informative: predictions are not saturated


def test_autoencoder_matches_torchxrayvision(tmp_path, radfeat_home, patients):
    """A smaller ResNet autoencoder (same classes, blocks 1-2-2-1) registered with 'models add' and run by type."""
    ae_mod = xrv.autoencoders
    torch.manual_seed(6)
    ae = ae_mod._ResNetAE(ae_mod.Bottleneck, ae_mod.DeconvBottleneck, [1, 2, 2, 1], 1)
    randomise_batchnorm(ae, 6)
    torch.save(ae.state_dict(), tmp_path / "ae.pt")  # TorchXRayVision's format for autoencoder weights
    proc = radfeat("models", "add", "ae-test", str(tmp_path / "ae.pt"))
    assert "Registered 'ae-test' (resnet-ae, latent code)" in proc.stdout

    out = tmp_path / "ae.parquet"
    proc = radfeat("extract", str(patients), "--type", "encoder", "--weights", "ae-test", "--output", str(out),
                   "--format", "parquet", "--prefix", "ae", "--quiet")
    assert "writing its latent code only" in proc.stderr  # the default features ask for predictions too
    table = pd.read_parquet(out)
    assert table.shape == (2, 2 + 512 * 3 * 3)
    assert table.columns[2] == "ae_latent_0" and table.columns[-1] == "ae_latent_4607"
    prov = pd.read_json(out.with_suffix(".json"), typ="series")
    assert prov["type"] == "encoder" and prov["weights"]["architecture"] == "resnet-ae"

    model = ae_mod._ResNetAE(ae_mod.Bottleneck, ae_mod.DeconvBottleneck, [1, 2, 2, 1], 1)
    model.load_state_dict(torch.load(tmp_path / "ae.pt", weights_only=True))  # as xrv.autoencoders.ResNetAE does
    model.eval()
    cols = table.columns[2:]
    for _, row in table.iterrows():
        x = torch.from_numpy(xrv_input(patients / row["level_1"] / row["filename"], 224))[None]
        with torch.no_grad():
            ref = model.encode(x).numpy()[0].reshape(-1)
        got = row[cols].to_numpy(np.float64)
        assert np.max(np.abs(got - ref)) <= 1e-4 * np.max(np.abs(ref))


def test_101_elastic_architecture_and_odd_state_dicts(tmp_path, radfeat_home):
    """The catalog autoencoder's layout is read off its state dict; other tensors are refused by 'models add'."""
    from radfeat.weights.architectures import build_autoencoder
    from radfeat.weights.checkpoint import Checkpoint

    state = xrv.autoencoders.ResNetAE101().state_dict()
    assert detect_architecture(state) == "resnet-ae" and block_counts(state) == (3, 4, 23, 2)
    model = build_autoencoder(Checkpoint(state, None, None, False, "state_dict"))
    assert block_counts(model.state_dict()) == (3, 4, 23, 2)
    torch.save({"weird.weight": torch.zeros(2)}, tmp_path / "odd.pt")
    proc = radfeat("models", "add", "odd", str(tmp_path / "odd.pt"), check=False)
    assert proc.returncode != 0 and "not a TorchXRayVision DenseNet, ResNet or ResNet autoencoder" in proc.stderr


@pytest.mark.parametrize(("raw", "field", "message"), [
    ({"type": "encoder", "weights": "densenet121-res224-all"}, "weights",
     "Weights 'densenet121-res224-all' are a TorchXRayVision DenseNet; choose type 'densenet'"),
    ({"type": "densenet", "weights": "resnet50-res512-all"}, "weights",
     "Weights 'resnet50-res512-all' are a TorchXRayVision encoder; choose type 'encoder'"),
    ({"type": "encoder", "weights": "101-elastic", "features": ["predictions"]}, "features",
     "'101-elastic' is an autoencoder and gives no predictions; choose dense (its latent code)"),
])
def test_validation(tmp_path, radfeat_home, raw, field, message):
    problems = validate(ExtractOptions.from_dict({"input": str(tmp_path), **raw}))
    assert [p.field for p in problems] == [field], problems
    assert message in problems[0].message
