"""``--type saliency``: maps equal a real torch-autograd Grad-CAM / Grad-CAM++ on the TorchXRayVision model."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from helpers import radfeat
from PIL import Image
from radfeat.extractors.saliency import (
    cam_maps,
    eigencam_map,
    gradcampp_maps,
    jet_lut,
    normalise,
    score_slopes,
    styled,
    upsample,
)
from radfeat.options import ExtractOptions, validate
from radfeat.pipeline.preprocess import center_crop
from radfeat.weights.catalog import Catalog
from reference import load_xrv_model, xrv_input

PATHOLOGIES = ["Atelectasis", "Effusion"]


def torch_maps(model, x: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grad-CAM, Grad-CAM++ (no epsilon) and the activations, by autograd through TorchXRayVision's ``model(x)``.

    The target layer is ``relu(model.features(x))``: ``features2`` applies that ReLU in place on the
    output of ``model.features``, so the hooked tensor holds ReLU(F) and its ``.grad`` is ∂y/∂ReLU(F).
    """
    kept = []

    def keep(module, inputs, output) -> None:
        output.retain_grad()
        kept.append(output)

    hook = model.features.register_forward_hook(keep)
    try:
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]
        model.zero_grad()
        model(t)[0, index].backward()
    finally:
        hook.remove()
    act = kept[0][0].detach().double()
    grads = kept[0].grad[0].double()
    assert (act >= 0).all()
    gradcam = torch.relu((grads.mean((1, 2))[:, None, None] * act).sum(0))
    g2, g3 = grads**2, grads**3
    sums = act.sum((1, 2))[:, None, None]
    aij = torch.where(grads != 0, g2 / (2 * g2 + sums * g3), torch.zeros_like(grads))
    weights = (torch.relu(grads) * aij).sum((1, 2))
    campp = torch.relu((weights[:, None, None] * act).sum(0))
    return gradcam.numpy(), campp.numpy(), act.numpy()


@pytest.fixture
def data(tmp_path, make_patients):
    root = tmp_path / "data"
    images = make_patients(root, n_patients=2, per_folder=1, size=(150, 121))
    ramp = (np.add.outer(np.arange(130), np.arange(100)) * 250).astype(np.uint16)
    Image.fromarray(ramp).save(images[0].with_name("deep16.png"))
    return root


def test_maps_equal_torch_autograd(tiny_weights, tiny_checkpoint, data):
    """NumPy maps from the ONNX outputs vs autograd on the xrv model, normalised, to 1e-4."""
    import onnxruntime as ort
    from radfeat.weights.export import export

    ws = Catalog().get(tiny_weights)
    info = export(ws, log=lambda m: None)
    head = np.load(info.head_path)
    sess = ort.InferenceSession(str(info.path), providers=["CPUExecutionProvider"])
    model = load_xrv_model(tiny_checkpoint)
    idx = [list(ws.labels).index(p) for p in PATHOLOGIES]
    for path in sorted(data.rglob("*.*"))[:2]:
        x = xrv_input(path)  # TorchXRayVision's own preprocessing
        preds, feats, act = sess.run(["predictions", "features", "activations"], {"image": x[None].astype(np.float32)})
        ours = normalise_all(cam_maps(act[0], head["weight"][idx]))
        logits = feats[0].astype(np.float64) @ head["weight"][idx].T.astype(np.float64) + head["bias"][idx]
        thr = ws.thresholds_array()
        slopes = score_slopes(logits, [thr[i] for i in idx], ws.apply_sigmoid)
        ours_pp = normalise_all(gradcampp_maps(act[0], head["weight"][idx], slopes))
        for k, i in enumerate(idx):
            gradcam, campp, t_act = torch_maps(model, x, i)
            assert np.max(np.abs(act[0] - t_act)) <= 1e-4 * np.max(t_act)
            assert np.max(np.abs(ours[k] - normalise(gradcam))) <= 1e-4, (path, PATHOLOGIES[k])
            assert np.max(np.abs(ours_pp[k] - normalise(campp))) <= 1e-4, (path, PATHOLOGIES[k])
        # Eigen-CAM from torch's own SVD of the same activations (sign oriented the same way)
        a = torch.from_numpy(t_act.reshape(t_act.shape[0], -1).T)
        centred = a - a.mean(0)
        proj = centred @ torch.linalg.svd(centred, full_matrices=False).Vh[0]
        proj = proj if float(proj @ a.sum(1)) >= 0 else -proj
        want = normalise(torch.relu(proj).reshape(t_act.shape[1:]).numpy())
        assert np.max(np.abs(normalise(eigencam_map(act[0])) - want)) <= 1e-4


def normalise_all(maps: np.ndarray) -> np.ndarray:
    return np.stack([normalise(m) for m in maps])


def test_cli_pngs_listing_and_values(tmp_path, tiny_weights, tiny_checkpoint, data):
    ws = tmp_path / "ws"
    radfeat("extract", str(data), "--type", "saliency", "--weights", tiny_weights, "--workspace", str(ws),
            "--pathologies", ",".join(PATHOLOGIES), "--saliency-methods", "gradcam,gradcampp,eigencam",
            "--batch-size", "2", "--quiet")
    out = ws / "DATA" / "extracted_features" / "image_saliency_maps.csv"
    table = pd.read_csv(out, dtype={"level_1": str}, keep_default_na=False)
    table["prediction"] = pd.to_numeric(table["prediction"])  # empty for Eigen-CAM
    assert list(table.columns) == ["level_1", "filename", "pathology", "method", "style", "prediction", "path"]
    per_image = (2 * len(PATHOLOGIES) + 1) * 4
    assert len(table) == 3 * per_image
    assert set(table["style"]) == {"gray", "colormap", "overlay", "multiply"}
    assert set(table.loc[table["method"] == "eigencam", "pathology"]) == {""}
    folder = ws / "DATA" / "saliency" / "image_saliency_maps"
    for p in table["path"]:
        assert p.startswith(str(folder)) and p.endswith(".png")
    model = load_xrv_model(tiny_checkpoint)
    labels = list(Catalog().get(tiny_weights).labels)
    inputs: dict = {}
    expected: dict = {}
    for _, row in table[(table["method"] == "gradcam")].iterrows():
        src = data / row["level_1"] / row["filename"]
        img = np.asarray(Image.open(row["path"]))
        region = center_crop(np.asarray(Image.open(src)))  # xrv preprocessing: maps cover the centre crop
        if region.ndim == 3:
            region = region[:, :, 0]
        assert img.shape[:2] == region.shape
        i = labels.index(row["pathology"])
        if src not in inputs:
            inputs[src] = xrv_input(src)
        x = inputs[src]
        if (src, i) not in expected:
            with torch.no_grad():
                pred = float(model(torch.from_numpy(x)[None])[0, i])
            expected[src, i] = pred, upsample(normalise(torch_maps(model, x, i)[0]), *region.shape)
        pred, big = expected[src, i]
        assert row["prediction"] == pytest.approx(pred, abs=1e-5)
        if row["style"] == "gray":
            assert img.ndim == 2 and np.max(np.abs(img.astype(int) - np.rint(big * 255).astype(int))) <= 1
        elif row["style"] == "colormap":
            assert img.ndim == 3 and img.shape[2] == 3
            assert np.mean(np.abs(img.astype(int) - jet_lut()[np.rint(big * 255).astype(np.uint8)])) < 1
        elif row["style"] == "multiply":
            shown = region if region.dtype == np.uint8 else np.rint(region * (255 / 65535)).astype(np.uint8)
            assert np.max(np.abs(img.astype(int) - styled(big, shown, "multiply").astype(int))) <= 1
    prov = pd.read_json(out.with_suffix(".json"), typ="series")
    assert prov["type"] == "saliency" and prov["saliency"]["maps_written"] == len(table)
    assert prov["export"]["max_act_diff"] is not None


def test_styles_and_colormap():
    lut = jet_lut()
    assert lut.shape == (256, 3) and tuple(lut[0]) == (0, 0, 128) and tuple(lut[255]) == (128, 0, 0)
    cam = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    image = np.full((3, 4), 200, np.uint8)
    assert styled(cam, image, "gray")[2, 3] == 255 and styled(cam, image, "multiply")[0, 0] == 0
    over = styled(cam, image, "overlay")
    assert over.shape == (3, 4, 3) and tuple(over[0, 0]) == (100, 100, 164)
    up = upsample(cam.astype(np.float64), 30, 40)
    assert up.shape == (30, 40) and up.min() >= 0 and up.max() <= 1
    assert np.allclose(up, cv2.resize(cam, (40, 40 * 3 // 4), interpolation=cv2.INTER_LINEAR), atol=1e-6)


def test_resume_and_medomics_mode(tmp_path, tiny_weights, data):
    import threading

    from radfeat.pipeline.run import extract

    opts = ExtractOptions(input=str(data), type="saliency", weights=tiny_weights, pathologies=["Effusion"],
                          styles=["gray"], batch_size=1, workspace=str(tmp_path / "ws"), preprocess="medomics",
                          filename="sal.csv")
    cancel = threading.Event()
    first = extract(opts, progress=lambda p: p.done >= 1 and p.stage == "extracting" and cancel.set(),
                    cancel=cancel, log=lambda m: None)
    assert first.cancelled and first.ok >= 1
    second = extract(opts, log=lambda m: None)
    assert second.resumed == first.ok and second.ok == 3
    table = pd.read_csv(second.output, keep_default_na=False)
    assert len(table) == 3 and table["filename"].is_unique
    for _, row in table.iterrows():  # medomics: the whole image is mapped
        src = next(data.rglob(row["filename"]))
        assert np.asarray(Image.open(row["path"])).shape == np.asarray(Image.open(src)).shape[:2]


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"pathologies": ["Infiltration"]}, "pathologies", "Unknown pathology 'Infiltration' for weights"),
    ({"pathologies": []}, "pathologies", "Choose at least one pathology to map"),
    ({"saliency_methods": ["shap"]}, "saliency_methods", "Unknown saliency method 'shap'; choose from: gradcam"),
    ({"saliency_methods": []}, "saliency_methods", "Choose at least one saliency method"),
    ({"styles": ["sepia"]}, "styles", "Unknown map style 'sepia'; choose from: gray, colormap, overlay, multiply"),
    ({"weights": "101-elastic"}, "weights", "Saliency maps need a DenseNet weight set; '101-elastic' is"),
    ({"master_table": {}}, "master_table", "Master table is not available for saliency maps"),
])
def test_validation(tmp_path, tiny_weights, changes, field, message):
    raw = {"input": str(tmp_path), "type": "saliency", "weights": tiny_weights, **changes}
    opts = ExtractOptions.from_dict(raw)
    problems = validate(opts)
    assert [p.field for p in problems] == [field], problems
    assert message in problems[0].message
