"""``radfeat models add-onnx`` + ``--type onnx``: any ONNX image model, its preprocessing and outputs as columns."""

from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
import torch
from helpers import radfeat, read_arff
from PIL import Image
from radfeat.options import ExtractOptions, validate
from radfeat.weights.catalog import Catalog

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


class TinyCNN(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 4, 3, stride=2)
        self.c2 = torch.nn.Conv2d(4, 6, 3, stride=2)
        self.fc = torch.nn.Linear(6, 5)

    def forward(self, x):
        a = torch.relu(self.c1(x))
        b = torch.relu(self.c2(a))
        return self.fc(b.mean((2, 3))), b


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """A small CNN exported by torch: input x (N, 3, 32, 32), outputs 'logits' (N, 5) and 'fmap' (N, 6, 7, 7)."""
    path = tmp_path_factory.mktemp("onnx") / "tiny_cnn.onnx"
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TinyCNN().eval(), (torch.zeros(1, 3, 32, 32),), str(path), input_names=["x"],
                          output_names=["logits", "fmap"], opset_version=17, dynamo=False,
                          dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}, "fmap": {0: "n"}})
    return path


@pytest.fixture(scope="module")
def nhwc_model(tmp_path_factory):
    """A grey NHWC model with a fixed batch of 1, built with onnx.helper: y = GlobalAveragePool(x * w)."""
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [2.0])
    nodes = [helper.make_node("Mul", ["img", "w"], ["scaled"]),
             helper.make_node("Transpose", ["scaled"], ["nchw"], perm=[0, 3, 1, 2]),
             helper.make_node("GlobalAveragePool", ["nchw"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["mean:0"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 16, 16, 1])],
                              [helper.make_tensor_value_info("mean:0", TensorProto.FLOAT, [1, 1])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("onnx") / "nhwc.onnx"
    onnx.save(model, str(path))
    return path


def by_hand(model_path, image_path, size, outputs, mean=MEAN, std=STD, pool=None):
    """The documented preprocessing, written out: RGB, Pillow bilinear resize, /255, (x - mean) / std, NCHW."""
    img = Image.open(image_path).convert("RGB").resize((size, size), Image.BILINEAR)
    x = (np.asarray(img, np.float32) / np.float32(255) - np.float32(mean)) / np.float32(std)
    x = x.transpose(2, 0, 1)[None].astype(np.float32)
    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    res = sess.run(outputs, {"x": x})
    return [(r.mean(axis=(2, 3)) if (pool and r.ndim == 4) else r).reshape(-1) for r in res]


def test_register_and_extract_matches_onnxruntime(tmp_path, radfeat_home, make_patients, cnn):
    proc = radfeat("models", "add-onnx", "tiny-cnn", str(cnn), "--mean", ",".join(map(str, MEAN)),
                   "--std", ",".join(map(str, STD)))
    assert "Registered ONNX model 'tiny-cnn': NCHW 3-channel 32×32 input, outputs logits (5), fmap (294)" in proc.stdout
    entry = Catalog().get("tiny-cnn")
    assert entry.architecture == "onnx" and entry.input_size == 32 and entry.extra["outputs"] == ["logits", "fmap"]
    listed = {r["name"]: r for r in __import__("json").loads(radfeat("models", "list", "--json").stdout)}
    assert listed["tiny-cnn"]["type"] == "onnx" and listed["tiny-cnn"]["exported"]

    root = tmp_path / "data"
    images = make_patients(root, n_patients=2, per_folder=2, size=(70, 60))
    Image.fromarray((np.add.outer(np.arange(50), np.arange(40)) * 600).astype(np.uint16)).save(
        images[0].with_name("deep16.png"))
    out = tmp_path / "cnn.csv"
    radfeat("extract", str(root), "--weights", "tiny-cnn", "--output", str(out), "--prefix", "v",
            "--batch-size", "3", "--quiet")  # type inferred from the weights
    table = pd.read_csv(out, dtype={"level_1": str})
    logit_cols = [f"v_logits_{i}" for i in range(5)]
    fmap_cols = [f"v_fmap_{i}" for i in range(6 * 7 * 7)]
    assert list(table.columns) == ["level_1", "filename"] + logit_cols + fmap_cols
    assert len(table) == 5
    for _, row in table.iterrows():
        path = root / row["level_1"] / row["filename"]
        if row["filename"] == "deep16.png":  # 16-bit: scaled to 8 bits first
            arr = np.rint(np.asarray(Image.open(path), np.float64) * 255 / 65535).astype(np.uint8)
            path = tmp_path / "deep16_8bit.png"
            Image.fromarray(arr).save(path)
        logits, fmap = by_hand(cnn, path, 32, ["logits", "fmap"])
        np.testing.assert_allclose(row[logit_cols].to_numpy(np.float64), logits, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(row[fmap_cols].to_numpy(np.float64), fmap, rtol=1e-5, atol=1e-6)
    prov = pd.read_json(out.with_suffix(".json"), typ="series")
    assert prov["type"] == "onnx" and prov["onnx_model"]["mean"] == pytest.approx(MEAN)


def test_cut_at_an_intermediate_tensor_with_pooling(tmp_path, radfeat_home, make_patients, cnn):
    """The recipe: name an inner tensor (here the first ReLU) as the output and average-pool it."""
    import onnx

    inner = next(n.output[0] for n in onnx.load(str(cnn)).graph.node if n.op_type == "Relu")
    radfeat("models", "add-onnx", "tiny-cut", str(cnn), "--outputs", inner, "--pool", "avg", "--mean", "0.5",
            "--std", "0.25")
    root = tmp_path / "data"
    make_patients(root, n_patients=1, per_folder=2, size=(50, 50))
    out = tmp_path / "cut.arff"
    radfeat("extract", str(root), "--type", "onnx", "--weights", "tiny-cut", "--output", str(out), "--format", "arff",
            "--quiet")
    columns, rows = read_arff(out)
    family = inner.strip("/").replace("/", "_")
    assert columns[2:] == [f"img_{family}_{i}" for i in range(4)] and len(rows) == 2
    # by hand, on a copy of the model that outputs the same tensor
    model = onnx.load(str(cnn))
    model.graph.output.append(onnx.helper.make_tensor_value_info(inner, onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(tmp_path / "with_inner.onnx"))
    for row in rows:
        (want,) = by_hand(tmp_path / "with_inner.onnx", root / row[0] / row[1], 32, [inner], mean=[0.5] * 3,
                          std=[0.25] * 3, pool=True)
        np.testing.assert_allclose(np.asarray(row[2:], np.float64), want, rtol=1e-5, atol=1e-6)


def test_fixed_batch_nhwc_grey_model(tmp_path, radfeat_home, make_patients, nhwc_model):
    proc = radfeat("models", "add-onnx", "grey-nhwc", str(nhwc_model), "--scale", "1", "--crop", "center")
    assert "NHWC 1-channel 16×16 input, outputs mean:0 (1)" in proc.stdout
    root = tmp_path / "data"
    make_patients(root, n_patients=1, per_folder=3, size=(40, 30))
    out = tmp_path / "g.csv"
    radfeat("extract", str(root), "--weights", "grey-nhwc", "--output", str(out), "--batch-size", "2", "--quiet")
    table = pd.read_csv(out, dtype={"level_1": str})
    assert list(table.columns) == ["level_1", "filename", "img_mean_0_0"] and len(table) == 3
    for _, row in table.iterrows():
        img = Image.open(root / row["level_1"] / row["filename"]).convert("L")
        w, h = img.size
        side = min(w, h)
        crop = img.crop((w // 2 - side // 2, h // 2 - side // 2, w // 2 - side // 2 + side, h // 2 - side // 2 + side))
        want = 2.0 * np.asarray(crop.resize((16, 16), Image.BILINEAR), np.float32).mean()
        assert row["img_mean_0_0"] == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"input_size": 64}, "the model takes 32×32 images, --input-size is 64"),
    ({"mean": [1, 2]}, "--mean needs 1 or 3 values (one per channel), got 2"),
    ({"channels": 1}, "the model takes 3 channel(s), --channels is 1"),
    ({"outputs": ["nope"]}, "the model has no tensor named 'nope'"),
    ({"std": [0]}, "--std values must not be 0"),
    ({"pool": "median"}, "--pool must be one of: none, avg, max"),
])
def test_registration_errors(radfeat_home, cnn, kwargs, message):
    from radfeat.extractors.onnx_model import OnnxModelError
    from radfeat.weights.registration import add_onnx

    with pytest.raises(OnnxModelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        add_onnx("bad-cnn", cnn, log=lambda m: None, **kwargs)
    assert "bad-cnn" not in Catalog()


def test_registration_error_from_the_cli(radfeat_home, cnn, tmp_path):
    proc = radfeat("models", "add-onnx", "bad-cnn", str(cnn), "--mean", "a,b", check=False)
    assert proc.returncode == 2 and "--mean must be numbers separated by commas" in proc.stderr
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    proc = radfeat("models", "add-onnx", "bad-cnn", str(tmp_path / "junk.onnx"), check=False)
    assert proc.returncode == 2 and "ONNX Runtime cannot load junk.onnx" in proc.stderr


def test_validation_needs_a_model(tmp_path, radfeat_home):
    problems = validate(ExtractOptions(input=str(tmp_path), type="onnx"))
    assert [(p.field, p.message) for p in problems] == [
        ("weights", "Choose the ONNX model to run (register one with 'radfeat models add-onnx')")]
    problems = validate(ExtractOptions(input=str(tmp_path), type="onnx", weights="densenet121-res224-all"))
    assert problems[0].message == "Weights 'densenet121-res224-all' are a TorchXRayVision DenseNet; choose type 'densenet'"
