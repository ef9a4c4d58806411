"""The page's extraction types, end to end: real backend in a thread, real Chromium (Debian's), real engine.

Fractal features and saliency maps run for real on small synthetic images; the encoder and ONNX types are
checked up to validation (the weights list is filtered by type; nothing is downloaded).
Screenshots go to ``tests/artifacts/``.
"""

from __future__ import annotations

import re

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

from helpers import artifact, needs_chromium  # noqa: E402
from ui_helpers import audit  # noqa: E402

LONG = 120_000  # ms: the first saliency run exports the tiny checkpoint to ONNX
STYLES = ["Grayscale", "Colormap", "Overlay", "Multiply"]

pytestmark = needs_chromium


@pytest.fixture
def viewport() -> dict[str, int]:
    return {"width": 1280, "height": 900}


def problem(pg: sync_api.Page, field: str) -> sync_api.Locator:
    return pg.locator(f'[data-problem="{field}"]')


def choose_type(pg: sync_api.Page, kind: str) -> None:
    pg.locator(f"#type-{kind}").check()
    expect(pg.locator(f"#type-{kind}")).to_be_checked()


def wait_valid(pg: sync_api.Page) -> None:
    expect(pg.locator("#valid-note")).to_be_visible()
    expect(pg.locator("#extract-btn")).to_be_enabled()


def weight_names(pg: sync_api.Page) -> list[str]:
    return pg.eval_on_selector_all("#weights option", "opts => opts.map(o => o.value)")


def unnamed_controls(pg: sync_api.Page) -> list[str]:
    return pg.evaluate("""() => [...document.querySelectorAll('input, select, button')]
        .filter(e => e.offsetParent !== null)
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                     && !e.getAttribute('aria-labelledby') && !(e.textContent || '').trim())
        .map(e => e.id || e.outerHTML.slice(0, 60))""")


# ---------------------------------------------------------------------------
def test_fractal_run_from_the_page(page, tmp_path, workspace, make_patients):
    pg = page
    root = tmp_path / "data"
    images = make_patients(root, depth=1, n_patients=2, per_folder=2, size=(48, 40))
    pg.fill("#input-root", str(root))
    expect(pg.locator("#folders-summary")).to_have_text("2 of 2 folders selected")

    choose_type(pg, "fractal")
    # only the fractal controls: no weights, features, preprocessing or model settings
    for hidden in ("#weights", "#features-dense", "#preprocess", "#device", "#precision"):
        expect(pg.locator(hidden)).to_be_hidden()
    expect(pg.locator("#max-box")).to_be_visible()
    expect(pg.locator("#master-toggle")).to_be_visible()
    expect(pg.locator("#filename")).to_have_value("image_fractal_features.csv")
    expect(pg.locator("#type-note")).to_contain_text("lacunarity")

    # the largest box size is checked by the backend, the message sits next to the field
    pg.fill("#max-box", "4")
    expect(problem(pg, "max_box")).to_contain_text("odd whole number between 3 and 255")
    expect(pg.locator("#max-box")).to_have_attribute("aria-invalid", "true")
    expect(pg.locator("#problem-list")).to_contain_text("Largest box size")
    expect(pg.locator("#extract-btn")).to_be_disabled()
    pg.fill("#max-box", "5")
    expect(problem(pg, "max_box")).to_be_empty()

    # the format changes the suggested name; ARFF (WEKA) it is
    pg.select_option("#format", "arff")
    expect(pg.locator("#filename")).to_have_value("image_fractal_features.arff")
    wait_valid(pg)
    expect(pg.locator("#output-path-value")).to_have_text(re.compile(r"image_fractal_features\.arff$"))
    assert unnamed_controls(pg) == []
    audit(pg, "types section2 fractal")
    pg.locator("#sec-type").screenshot(path=artifact("types_section2_fractal.png"))

    pg.click("#extract-btn")
    expect(pg.locator("#job-result")).to_contain_text("Extraction finished", timeout=LONG)
    expect(pg.locator("#job-result")).to_contain_text(f"{len(images)} images")
    pg.locator("#log-details summary").click()
    expect(pg.locator("#log")).to_contain_text("no model weights")  # issue 14, item 7: not "weights 'fractal'"
    expect(pg.locator("#log")).not_to_contain_text("weights 'fractal'")
    out = workspace / "DATA" / "extracted_features" / "image_fractal_features.arff"
    assert out.is_file()
    assert "@ATTRIBUTE 'img_fractal_lac_r3' NUMERIC" in out.read_text()

    # the ARFF table in section 4: fractal columns, an image, no prediction chart
    expect(pg.locator("#result-file")).to_have_value(str(out))
    pg.locator("#table-toggle").check()
    rows = pg.locator("#result-table tbody tr[data-row]")
    expect(rows).to_have_count(len(images))
    headers = pg.locator("#result-table thead th").all_inner_texts()
    assert "img_fractal_lac_r3" in headers and "img_fractal_fd_r5" in headers
    expect(pg.locator("#hide-dense")).to_be_hidden()  # nothing to hide in a fractal table
    rows.nth(0).click()
    expect(pg.locator("#thumb-frame img")).to_have_attribute("src", re.compile("^data:image/png;base64,"))
    # no predictions: the image's curves against box size instead
    expect(pg.locator("#chart-title")).to_have_text("Fractal curves against box size r")
    expect(pg.locator("#chart svg.curve-chart").first).to_be_visible()
    expect(pg.locator("#chart svg.curve-chart desc").first).to_contain_text("r 3:")
    expect(pg.locator("#maps-box")).to_be_hidden()
    audit(pg, "types section4 fractal table")
    pg.locator("#sec-data-out").screenshot(path=artifact("types_section4_fractal_table.png"))


def test_saliency_run_and_maps_grid(page, tmp_path, workspace, tiny_weights, make_patients):
    pg = page
    root = tmp_path / "data"
    images = make_patients(root, depth=1, n_patients=2, per_folder=1, size=(64, 64))
    pg.fill("#input-root", str(root))
    expect(pg.locator("#folders-summary")).to_have_text("2 of 2 folders selected")

    choose_type(pg, "saliency")
    pg.select_option("#weights", tiny_weights)
    expect(pg.locator("#master-toggle")).to_be_hidden()  # the result lists image files
    expect(pg.locator("#prefix")).to_be_hidden()
    expect(pg.locator("#features-dense")).to_be_hidden()
    expect(pg.locator("#filename")).to_have_value("image_saliency_maps.csv")
    expect(pg.locator("#saliency-folder")).to_have_text("DATA/saliency/image_saliency_maps")
    # saliency needs DenseNet weight sets: only those are listed
    names = weight_names(pg)
    assert tiny_weights in names and "resnet50-res512-all" not in names and "101-elastic" not in names

    # the pathologies are the weight set's trained labels, all chosen by default
    boxes = pg.locator("#pathologies-list input[type=checkbox]")
    expect(boxes).to_have_count(15)
    expect(pg.locator("#pathologies-summary")).to_contain_text("15 of 15 selected")
    pg.uncheck("#pathologies-all")
    expect(problem(pg, "pathologies")).to_contain_text("Choose at least one pathology")
    expect(pg.locator("#extract-btn")).to_be_disabled()
    pg.locator("#pathologies-list label", has_text="Atelectasis").click()
    expect(problem(pg, "pathologies")).to_be_empty()
    expect(pg.locator("#pathologies-summary")).to_contain_text("1 of 15 selected")

    # methods and styles: at least one of each, messages next to them
    expect(pg.locator("#saliency-methods-gradcam")).to_be_checked()
    pg.uncheck("#saliency-methods-gradcam")
    expect(problem(pg, "saliency_methods")).to_contain_text("Choose at least one saliency method")
    pg.check("#saliency-methods-gradcam")
    expect(problem(pg, "saliency_methods")).to_be_empty()
    for style in ("gray", "colormap", "overlay", "multiply"):
        pg.uncheck(f"#styles-{style}")
    expect(problem(pg, "styles")).to_contain_text("Choose at least one map style")
    for style in ("gray", "colormap", "overlay", "multiply"):
        pg.check(f"#styles-{style}")
    expect(problem(pg, "styles")).to_be_empty()
    expect(pg.locator("#styles-summary")).to_have_text("4 maps (PNG) per image.")
    wait_valid(pg)
    assert unnamed_controls(pg) == []
    audit(pg, "types section2 saliency")
    pg.locator("#sec-type").screenshot(path=artifact("types_section2_saliency.png"))

    pg.click("#extract-btn")
    expect(pg.locator("#job-result")).to_contain_text("Extraction finished", timeout=LONG)
    expect(pg.locator("#job-result")).to_contain_text("8 saliency maps (PNG) written under")
    listing = workspace / "DATA" / "extracted_features" / "image_saliency_maps.csv"
    assert listing.is_file()
    assert len(list((workspace / "DATA" / "saliency" / "image_saliency_maps").rglob("*.png"))) == 8

    # the listing: one row per PNG; picking a row shows every map of its image next to the image
    expect(pg.locator("#result-file")).to_have_value(str(listing))
    pg.locator("#table-toggle").check()
    rows = pg.locator("#result-table tbody tr[data-row]")
    expect(rows).to_have_count(4 * len(images))
    expect(pg.locator("#table-hint")).to_contain_text("saliency map")
    rows.nth(4).focus()
    pg.keyboard.press("ArrowDown")
    pg.keyboard.press("ArrowDown")
    pg.keyboard.press("Enter")  # row 7: the second image's overlay map
    expect(rows.nth(6)).to_have_class(re.compile("picked"))
    expect(pg.locator("#maps-box")).to_be_visible()
    expect(pg.locator("#chart-box")).to_be_hidden()
    grid = pg.locator("#maps-wrap table.maps-grid")
    expect(grid.locator("thead th")).to_have_text(["Map", *STYLES])
    expect(grid.locator("tbody tr")).to_have_count(1)
    head = grid.locator("tbody th.map-head")
    expect(head).to_contain_text("Grad-CAM")
    expect(head).to_contain_text("Atelectasis")
    expect(head.locator(".map-pred")).to_have_text(re.compile(r"^prediction \d\.\d{3}$"))
    maps = grid.locator("td img")
    expect(maps).to_have_count(4)
    for k in range(4):
        expect(maps.nth(k)).to_have_attribute("src", re.compile("^data:image/png;base64,"))
        expect(maps.nth(k)).to_have_attribute("alt", re.compile(f"Grad-CAM · Atelectasis · {STYLES[k]}"))
    assert pg.evaluate("[...document.querySelectorAll('#maps-wrap img')].every(i => i.naturalWidth > 0)")
    picked_style = rows.nth(6).locator("td").nth(4).inner_text()  # level_1, filename, pathology, method, style
    expect(grid.locator("td.current")).to_have_count(1)
    assert picked_style == "overlay"
    expect(grid.locator("td").nth(2)).to_have_class(re.compile("current"))
    # the source image, for comparison
    expect(pg.locator("#thumb-frame img")).to_have_attribute("src", re.compile("^data:image/png;base64,"))
    filename = rows.nth(6).locator("td").nth(1).inner_text()
    expect(pg.locator("#thumb-caption")).to_contain_text(filename)
    expect(pg.locator("#maps-caption")).to_contain_text(f"4 maps of {images[-1].parent.name}/{filename}")
    audit(pg, "types section4 saliency maps")
    pg.locator("#sec-data-out").screenshot(path=artifact("types_section4_saliency_maps.png"))


@pytest.fixture
def own_home(tmp_path, tiny_weights, tiny_checkpoint, monkeypatch):
    """A radfeat home of this test's own, holding only the catalog and the tiny weights.

    The weights lists shown below depend on what is registered, which other tests of the session change.
    """
    from radfeat.weights.registration import add_weights

    monkeypatch.setenv("RADFEAT_HOME", str(tmp_path / "home"))
    add_weights(tiny_weights, tiny_checkpoint, log=lambda m: None)
    return tmp_path / "home"


def test_encoder_and_onnx_types_filter_weights(own_home, page, tiny_weights):
    pg = page
    densenets = weight_names(pg)
    assert tiny_weights in densenets and "resnet50-res512-all" not in densenets

    # the type choice is a radio group: arrow keys move through it
    pg.locator("#type-densenet").focus()
    pg.keyboard.press("ArrowRight")
    expect(pg.locator("#type-encoder")).to_be_checked()
    expect(pg.locator("label.seg.checked")).to_have_text(re.compile("Other encoders"))

    # encoder: only the encoder weight sets, the ResNet-50 by default, features named for it
    assert weight_names(pg) == ["resnet50-res512-all", "101-elastic"]
    expect(pg.locator("#weights")).to_have_value("resnet50-res512-all")
    expect(pg.locator("#features-dense-text")).to_have_text("ResNet features (2048 per image)")
    expect(pg.locator("#features-predictions-text")).to_have_text("Predictions (18 heads, 16 trained)")
    expect(pg.locator("#weights-info .chip.trained")).to_have_count(16)
    expect(pg.locator("#weights-info .chip.untrained")).to_have_count(2)
    expect(pg.locator("#prefix-example")).to_have_text("img_resnetfeatures_0")
    expect(pg.locator("#precision")).to_be_attached()
    expect(problem(pg, "weights")).to_be_empty()
    expect(problem(pg, "features")).to_be_empty()
    assert unnamed_controls(pg) == []
    audit(pg, "types section2 encoder")
    pg.locator("#sec-type").screenshot(path=artifact("types_section2_encoder.png"))

    # the autoencoder gives no predictions: that box is off; without dense nothing is left
    pg.select_option("#weights", "101-elastic")
    expect(pg.locator("#features-predictions")).to_be_disabled()
    expect(pg.locator("#features-predictions")).not_to_be_checked()
    expect(pg.locator("#features-predictions-text")).to_contain_text("none: this model gives no predictions")
    expect(pg.locator("#features-dense-text")).to_have_text("Latent code (4608 per image)")
    expect(pg.locator("#weights-info")).to_contain_text("no predictions")
    pg.uncheck("#features-dense")
    expect(problem(pg, "features")).to_contain_text("at least one")
    expect(pg.locator("#extract-btn")).to_be_disabled()
    pg.check("#features-dense")
    expect(problem(pg, "features")).to_be_empty()
    pg.select_option("#weights", "resnet50-res512-all")
    expect(pg.locator("#features-predictions")).to_be_enabled()
    expect(pg.locator("#features-predictions")).to_be_checked()  # the earlier choice comes back

    # ONNX: nothing registered here; the backend's message sits next to the weights
    choose_type(pg, "onnx")
    assert weight_names(pg) == [""]
    expect(pg.locator("#weights option")).to_have_text(re.compile("^Nothing registered yet"))
    expect(problem(pg, "weights")).to_contain_text("Choose the ONNX model to run")
    expect(pg.locator("#weights-info")).to_contain_text("radfeat models add-onnx")
    expect(pg.locator("#features-dense")).to_be_hidden()
    expect(pg.locator("#preprocess")).to_be_hidden()
    expect(pg.locator("#extract-btn")).to_be_disabled()
    audit(pg, "types section2 onnx")
    pg.locator("#sec-type").screenshot(path=artifact("types_section2_onnx.png"))

    # back to DenseNet: its own list and the earlier choice
    choose_type(pg, "densenet")
    pg.select_option("#weights", tiny_weights)
    choose_type(pg, "encoder")
    expect(pg.locator("#weights")).to_have_value("resnet50-res512-all")
    choose_type(pg, "densenet")
    expect(pg.locator("#weights")).to_have_value(tiny_weights)
    expect(pg.locator("#features-dense-text")).to_have_text("Dense features (1024 per image)")

    # the file name follows type and format until the user edits it
    expect(pg.locator("#filename")).to_have_value("image_extracted_features.csv")
    choose_type(pg, "fractal")
    expect(pg.locator("#filename")).to_have_value("image_fractal_features.csv")
    pg.select_option("#format", "parquet")
    expect(pg.locator("#filename")).to_have_value("image_fractal_features.parquet")
    choose_type(pg, "saliency")
    expect(pg.locator("#filename")).to_have_value("image_saliency_maps.parquet")
    pg.fill("#filename", "my_maps.parquet")
    choose_type(pg, "densenet")
    expect(pg.locator("#filename")).to_have_value("my_maps.parquet")  # edited: kept
    pg.select_option("#format", "arff")
    expect(pg.locator("#filename")).to_have_value("my_maps.arff")  # its extension follows the format
    pg.select_option("#format", "csv")
    pg.fill("#filename", "bad name.csv")
    expect(problem(pg, "filename")).to_contain_text(".csv")
    pg.fill("#filename", "image_extracted_features.csv")  # the suggestion again: follows from now on
    choose_type(pg, "fractal")
    expect(pg.locator("#filename")).to_have_value("image_fractal_features.csv")
    pg.fill("#max-box", "7")

    # the choices survive a reload (local storage)
    pg.reload()
    expect(pg.locator("#weights")).to_be_enabled()
    expect(pg.locator("#type-fractal")).to_be_checked()
    expect(pg.locator("#max-box")).to_have_value("7")
    expect(pg.locator("#filename")).to_have_value("image_fractal_features.csv")
    expect(pg.locator("#weights")).to_be_hidden()
    choose_type(pg, "densenet")
    expect(pg.locator("#weights")).to_have_value(tiny_weights)
    expect(pg.locator("#filename")).to_have_value("image_extracted_features.csv")


def test_types_come_from_the_backend(page):
    """The type cards and each type's option fields are rendered from list_types; frontend/ names no type."""
    from pathlib import Path

    pg = page
    listed = pg.evaluate("""async () => (await (await import('/js/rpc.js')).rpc('list_types'))""")
    names = [t["name"] for t in listed["types"]]
    assert pg.eval_on_selector_all("input[name=etype]", "rs => rs.map(r => r.value)") == names
    expect(pg.locator(f"#type-{listed['default']}")).to_be_checked()
    for t in listed["types"]:
        choose_type(pg, t["name"])
        expect(pg.locator("label.seg.checked")).to_contain_text(t["label"])
        pg.evaluate("document.getElementById('advanced').open = true")  # device, precision, batch size
        for opt in t["options"]:
            expect(pg.locator(f'[data-option="{opt["name"]}"]').first).to_be_visible()
        others = {o["name"] for u in listed["types"] for o in u["options"]} - {o["name"] for o in t["options"]}
        for name in others:
            expect(pg.locator(f'[data-option="{name}"]')).to_be_hidden()
        expect(pg.locator("#weights-field")).to_be_visible() if t["uses_weights"] else expect(
            pg.locator("#weights-field")).to_be_hidden()
    frontend = Path(__file__).resolve().parents[1] / "frontend"
    sources = {p: p.read_text(encoding="utf-8") for p in [*frontend.glob("*.js"), *frontend.glob("js/*.js"),
                                                         frontend / "index.html"]}
    for path, text in sources.items():
        for name in names:
            for quote in "\"'`":
                assert f"{quote}{name}{quote}" not in text, f"{path.name} names the type {name!r}"
        if path.suffix == ".js":
            assert text.count("\n") <= 400, f"{path.name} has over 400 lines"
