"""``--type anatomy``: ChestX-Det PSPNet through ONNX, against TorchXRayVision's own PSPNet class.

A random-initialised PSPNet of the real layout (one block per stage, to keep it fast) is saved as the
release file is — a DataParallel state dict with ``module.`` keys — under the catalog's file name.
The reference is TorchXRayVision's ``PSPNet`` itself, constructed from that file by its own
constructor (``cache_dir`` holds the file, so nothing is downloaded).  The test catalog runs it at
128 × 128 (the release runs at 512; PSPNet at 512 costs ~10 s per image on two cores), so
TorchXRayVision's ``fix_resolution`` (resize to 512) is told the test size.  The measures are
recomputed from the torch masks by a plain-loop implementation written here.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import radfeat
from radfeat.xrv_compat import import_xrv
from reference import randomise_batchnorm, xrv_input

xrv = import_xrv()
SIZE = 128
NAME = "chestx-det-pspnet"


def spread_logits(net) -> None:
    """Rescale the random classifier so each structure's logit has mean 0, std 1 over a synthetic radiograph.

    A random network's class scores barely vary across the image (all-or-nothing masks); rescaled, every
    structure gets a real mask with boundaries, which is what the IoU and the measures must be tested on.
    """
    from radfeat.weights.segmentation import probe_images, wrapper

    seen = {}
    hook = net.classification.register_forward_hook(lambda m, i, o: seen.update(f=i[0]))
    with torch.no_grad():
        wrapper(net)(torch.from_numpy(probe_images(SIZE, 1)))
        hook.remove()
        raw = torch.einsum("kc,nchw->nkhw", net.classification.weight[:, :, 0, 0], seen["f"])
        mean, std = raw.mean(dim=(0, 2, 3)), raw.std(dim=(0, 2, 3))
        net.classification.weight.div_(std[:, None, None, None])
        net.classification.bias.copy_(-mean / std)


@pytest.fixture(scope="module")
def pspnet_home(radfeat_home: Path, tmp_path_factory: pytest.TempPathFactory):
    """The release's file name in the test home, and a catalog whose PSPNet runs at ``SIZE``."""
    from radfeat.weights import home
    from torchxrayvision.baseline_models.chestx_det.ptsemseg.pspnet import pspnet

    torch.manual_seed(3)
    net = pspnet(14, block_config=[1, 1, 1, 1]).eval()
    randomise_batchnorm(net, seed=5)
    spread_logits(net)
    weights = home.weights_dir() / "pspnet_chestxray_best_model_4.pth"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, weights)
    catalog = json.loads((Path(__file__).parents[1] / "models" / "catalog.json").read_text())
    for entry in catalog["weights"]:
        if entry["name"] == NAME:
            entry["input_size"] = SIZE
    path = tmp_path_factory.mktemp("anatomy") / "catalog.json"
    path.write_text(json.dumps(catalog))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RADFEAT_CATALOG", str(path))
        yield weights


@pytest.fixture(scope="module")
def torch_pspnet(pspnet_home: Path):
    """TorchXRayVision's PSPNet, built by its own constructor from the file (no download).

    Its constructor builds the release's block layout; the test network has one block per stage, so
    the constructor is handed TorchXRayVision's own ``pspnet`` class with that layout.
    """
    import torchxrayvision.baseline_models.chestx_det as chestx_det
    from torchxrayvision.baseline_models.chestx_det.ptsemseg.pspnet import pspnet

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chestx_det, "pspnet", lambda n: pspnet(n, block_config=[1, 1, 1, 1]))
        model = chestx_det.PSPNet(cache_dir=str(pspnet_home.parent))
    return model.eval()


def torch_masks(model, x: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    monkeypatch.setattr(xrv.utils, "fix_resolution", lambda t, resolution, m: t)  # the test size is native
    with torch.no_grad():
        return (model(torch.from_numpy(x[None, None])) > 0).numpy()[0]


def loop_measures(masks: np.ndarray, crop_x: int, crop_y: int, scale: float) -> dict[str, float]:
    """Area, box, centroid per structure; CTR and lung ratio — with loops, from the definitions."""
    out: dict[str, float] = {}
    slugs = [s.lower().replace(" ", "_") for s in xrv.baseline_models.chestx_det.PSPNet.targets]
    for slug, m in zip(slugs, masks, strict=True):
        pts = [(x, y) for y in range(m.shape[0]) for x in range(m.shape[1]) if m[y, x]]
        out[f"{slug}_area"] = len(pts) / m.size
        if pts:
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            out[f"{slug}_bbox_x0"] = crop_x + min(xs) * scale
            out[f"{slug}_bbox_x1"] = crop_x + (max(xs) + 1) * scale
            out[f"{slug}_bbox_y0"] = crop_y + min(ys) * scale
            out[f"{slug}_bbox_y1"] = crop_y + (max(ys) + 1) * scale
            out[f"{slug}_centroid_x"] = crop_x + (sum(xs) / len(xs) + 0.5) * scale
            out[f"{slug}_centroid_y"] = crop_y + (sum(ys) / len(ys) + 0.5) * scale
    heart, left, right = masks[slugs.index("heart")], masks[slugs.index("left_lung")], masks[slugs.index("right_lung")]
    heart_cols = [x for x in range(SIZE) if heart[:, x].any()]
    widths = [max(xs) - min(xs) + 1 for y in range(SIZE)
              if (xs := [x for x in range(SIZE) if left[y, x] or right[y, x]])]
    out["ctr"] = (max(heart_cols) - min(heart_cols) + 1) / max(widths) if heart_cols and widths else math.nan
    out["lung_area_ratio"] = left.sum() / right.sum() if right.sum() else math.nan
    return out


@pytest.fixture(scope="module")
def cxr(tmp_path_factory):
    from radfeat.synthetic import make_dataset

    root = tmp_path_factory.mktemp("anat") / "data"
    make_dataset(root, n_patients=1, per_folder=2, size=(300, 260), seed=11)
    return root


def test_anatomy_table_matches_torch_masks_and_loop_measures(tmp_path, pspnet_home, torch_pspnet, cxr, monkeypatch):
    ws = tmp_path / "ws"
    res = radfeat("extract", str(cxr), "--type", "anatomy", "--workspace", str(ws), "--anatomy-masks",
                  "--threads", "2", "--quiet")
    assert res.returncode == 0, res.stderr
    assert "mask IoU" in res.stderr
    out = ws / "DATA" / "extracted_features" / "image_anatomy_features.csv"
    df = pd.read_csv(out, dtype={"level_1": str})
    assert len(df) == 2 and df.columns[-1] == "mask_path"
    assert len(df.columns) == 2 + 14 * 7 + 2 + 1
    prov = json.loads(out.with_suffix(".json").read_text())
    assert prov["type"] == "anatomy" and prov["export"]["min_iou"] >= 0.999
    for _, row in df.iterrows():
        path = cxr / row["level_1"] / row["filename"]
        x = xrv_input(path, "xrv", size=SIZE)[0].astype(np.float32)
        masks = torch_masks(torch_pspnet, x, monkeypatch)
        # radfeat's ONNX masks for the same input, from the cached export
        import onnxruntime as ort
        from radfeat.extractors.anatomy import AnatomyExtractor  # noqa: F401  (the module under test is importable)
        from radfeat.weights.catalog import Catalog
        from radfeat.weights.export import onnx_path
        from radfeat.weights.segmentation import mask_iou

        sess = ort.InferenceSession(str(onnx_path(Catalog().get(NAME))), providers=["CPUExecutionProvider"])
        onnx_masks = sess.run(["logits"], {"image": x[None, None]})[0] > 0
        assert mask_iou(onnx_masks, masks[None]).min() >= 0.999
        assert 0 < masks.mean() < 1 and all(m.any() for m in masks)  # real, non-trivial masks
        side = min(300, 260)
        expected = loop_measures(masks, 260 // 2 - side // 2, 300 // 2 - side // 2, side / SIZE)
        for key, value in expected.items():
            got = row[f"img_anatomy_{key}"]
            if math.isnan(value):
                assert math.isnan(got), key
            else:
                assert got == pytest.approx(value, rel=1e-9, abs=1e-9), key
        assert Path(row["mask_path"]).is_file() and str(ws / "DATA" / "anatomy") in row["mask_path"]


def test_anatomy_validation_and_models_list(pspnet_home):
    from radfeat.options import ExtractOptions, validate

    problems = validate(ExtractOptions(input=".", type="anatomy", weights="densenet121-res224-all"))
    assert any(p.field == "weights" and "choose type 'densenet'" in p.message for p in problems)
    assert not [p for p in validate(ExtractOptions(input=".", type="anatomy")) if p.field == "weights"]
    res = radfeat("models", "list")
    assert res.returncode == 0 and "chestx-det-pspnet" in res.stdout and "anatomy" in res.stdout


def test_anatomy_through_rpc(tmp_path, pspnet_home, cxr):
    """start_extraction with type anatomy: the job writes the table and the overlays in the workspace."""
    from helpers import serving

    ws = tmp_path / "ws"
    ws.mkdir()
    with serving(ws) as (_, rpc):
        v = rpc("validate_options", options={"input": str(cxr), "type": "anatomy", "anatomy_masks": True})
        assert v["valid"], v
        assert v["output_path"].endswith("image_extracted_features.csv")
        job = rpc("start_extraction", options={"input": str(cxr), "type": "anatomy", "anatomy_masks": True,
                                               "filename": "anatomy.csv"})
        st = rpc.wait(job["job_id"], timeout=300)
        assert st["state"] == "done", st
        page = rpc("read_table", path=job["output"])
    assert page["total"] == 2 and page["columns"][-1] == "mask_path"
    ctr = page["columns"].index("img_anatomy_ctr")
    assert all(row[ctr] is None or row[ctr] > 0 for row in page["rows"])
    assert all(Path(row[-1]).is_file() for row in page["rows"])


class _Bright(torch.nn.Module):
    """A stand-in segmentation net: class maps from the pixel brightness (``softmax``: 2 classes; else 1)."""

    def __init__(self, softmax: bool) -> None:
        super().__init__()
        self.softmax = softmax

    def forward(self, x):
        if self.softmax:
            return torch.cat([0.5 - x, x - 0.5], dim=1)  # N × 2 × H × W
        return (x[:, 0] - 0.5) * 8  # N × H × W logits


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_own_onnx_segmentation_model(tmp_path, radfeat_home, make_patients, activation):
    """models add-onnx --task segmentation, then --type anatomy: the same measures from the model's masks."""
    from PIL import Image
    from radfeat.extractors.anatomy_measures import View, measures

    onnx_file = tmp_path / "seg.onnx"
    torch.onnx.export(_Bright(activation == "softmax"), (torch.zeros(1, 1, 48, 48),), str(onnx_file),
                      input_names=["image"], output_names=["masks"], dynamic_axes={"image": {0: "n"}, "masks": {0: "n"}},
                      opset_version=17, dynamo=False)
    name = f"seg-{activation}"
    labels = "Background,Pneumothorax" if activation == "softmax" else "Pneumothorax"
    radfeat("models", "add-onnx", name, str(onnx_file), "--task", "segmentation", "--labels", labels,
            "--activation", activation)
    data = tmp_path / "cxr"
    make_patients(data, n_patients=1, per_folder=2, size=(70, 60))
    ws = tmp_path / "ws"
    radfeat("extract", str(data), "--weights", name, "--workspace", str(ws), "--quiet")
    df = pd.read_csv(ws / "DATA" / "extracted_features" / "image_anatomy_features.csv", dtype={"level_1": str})
    names = ["Background", "Pneumothorax"] if activation == "softmax" else ["Pneumothorax"]
    for _, row in df.iterrows():
        img = Image.open(data / row["level_1"] / row["filename"]).convert("L").resize((48, 48), Image.BILINEAR)
        x = np.asarray(img, np.float32) / 255
        bright = x > 0.5
        masks = np.stack([~bright, bright]) if activation == "softmax" else bright[None]
        want = measures(masks, names, View.of(70, 60, (48, 48), "medomics"))
        got = row[[c for c in df.columns if c.startswith("img_anatomy_")]].to_numpy(np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
        assert 0 < row["img_anatomy_pneumothorax_area"] < 1 and math.isnan(row["img_anatomy_ctr"])


def test_anatomy_from_the_page(page, workspace, pspnet_home, cxr):
    """The Anatomy card comes from the registry: choose it, tick the overlays, extract; the table and PNGs appear."""
    from helpers import artifact
    from playwright.sync_api import expect
    from ui_helpers import audit

    pg = page
    pg.fill("#input-root", str(cxr))
    pg.locator("#type-anatomy").check()
    expect(pg.locator("#type-note")).to_contain_text("cardiothoracic ratio")
    expect(pg.locator("#weights")).to_have_value("chestx-det-pspnet")
    pg.locator("#anatomy-masks").check()
    audit(pg, "anatomy type card and mask overlays option")
    expect(pg.locator("#filename")).to_have_value("image_anatomy_features.csv")
    expect(pg.locator("#extract-btn")).to_be_enabled(timeout=30_000)
    pg.click("#extract-btn")
    expect(pg.locator("#job-result")).to_contain_text("Extraction finished", timeout=300_000)
    out = workspace / "DATA" / "extracted_features" / "image_anatomy_features.csv"
    table = pd.read_csv(out)
    assert len(table) == 2 and "img_anatomy_ctr" in table.columns and table["mask_path"].map(
        lambda p: Path(p).is_file()).all()
    pg.locator("#table-toggle").check()
    expect(pg.locator("#result-table tbody tr[data-row]")).to_have_count(2)
    pg.locator("#sec-type").screenshot(path=str(artifact("types_section2_anatomy.png")))
