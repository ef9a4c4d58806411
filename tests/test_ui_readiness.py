"""Issue 14 in the browser, before Extract: a run that cannot start is never called valid (items 1, 2, 4, 6, 7).

Real backend on loopback, Debian's Chromium, real files; the catalog's download address is a closed port
(offline) or a small HTTP server on 127.0.0.1.  axe-core audits every state; screenshots in tests/artifacts/.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

from helpers import FileServer, artifact, closed_port_url, needs_chromium  # noqa: E402
from ui_helpers import audit, backend_and_page, run_to_outcome, set_root, wait_ready  # noqa: E402

pytestmark = needs_chromium
LABELS = [f"Label{i}" for i in range(18)]


def problem(pg, field: str):
    return pg.locator(f'[data-problem="{field}"]')


@pytest.fixture
def offline_home(tmp_path, monkeypatch):
    """A radfeat home with nothing downloaded and a catalog whose only weight set lives at a closed port."""
    home = tmp_path / "home"
    monkeypatch.setenv("RADFEAT_HOME", str(home))
    catalog = tmp_path / "catalog.json"
    monkeypatch.setenv("RADFEAT_CATALOG", str(catalog))
    return home, catalog


def write_catalog(catalog: Path, url: str, sha: str | None = None, size: int | None = None) -> None:
    entry = {"name": "cxr-net", "file": "cxr-net.pt", "url": f"{url}/cxr-net.pt", "sha256": sha, "size": size,
             "labels": LABELS, "description": "A DenseNet served by a test server"}
    catalog.write_text(json.dumps({"default": "cxr-net", "pathologies": LABELS, "weights": [entry]}))


@pytest.fixture
def offline_page(browser, offline_home, workspace, tmp_path):
    write_catalog(offline_home[1], closed_port_url())
    with backend_and_page(browser, workspace) as (_srv, on):
        yield on.page


# ---------------------------------------------------------------------------
def test_offline_without_weights_is_never_valid(offline_page, tmp_path, make_patients, tiny_checkpoint):
    """Item 1: offline, no weights: never "valid"; the page says why and imports a weight file."""
    pg = offline_page
    root = tmp_path / "data"
    make_patients(root, depth=1, n_patients=2, per_folder=1)
    set_root(pg, root)
    expect(pg.locator("#folders-summary")).to_have_text("2 of 2 folders selected")
    box = pg.locator('[data-field="weights"] .readiness')
    expect(box).to_contain_text("not on this machine")
    expect(pg.locator("#valid-note")).to_be_hidden()
    expect(pg.locator("#extract-btn")).to_be_disabled()
    expect(pg.locator("#invalid-title")).to_have_text("Not ready to extract yet")
    # the network does not answer: no download button, the reason instead
    expect(box.locator('[data-role="probe"]')).not_to_be_empty()
    expect(box.locator('[data-action="download"]')).to_have_count(0)
    expect(pg.locator("#weights-info")).to_contain_text("Not on this machine")
    audit(pg, "offline, weights missing")
    pg.locator("#sec-type").screenshot(path=artifact("readiness_weights_missing.png"))
    # import the weight file from the page (a browser: a path field; the window has native dialogs)
    own = tmp_path / "cxr-net.pt"
    own.write_bytes(tiny_checkpoint.read_bytes())
    pg.fill("#import-path", str(own))
    box.get_by_role("button", name="Import").click()
    expect(pg.locator('[data-field="weights"] .readiness')).to_have_count(0, timeout=60_000)
    wait_ready(pg)
    expect(pg.locator("#weights-info")).to_contain_text("On this machine")
    audit(pg, "weights imported, ready")


def test_download_from_the_page_with_progress(browser, offline_home, workspace, tmp_path, make_patients,
                                              tiny_checkpoint):
    """Item 1: the network answers: the page offers the download, shows its progress, then is ready."""
    payload = tiny_checkpoint.read_bytes()
    with FileServer(payload) as files:
        write_catalog(offline_home[1], files.url, hashlib.sha256(payload).hexdigest(), len(payload))
        with backend_and_page(browser, workspace) as (_srv, on):
            pg = on.page
            root = tmp_path / "data"
            make_patients(root, depth=1, n_patients=2, per_folder=1)
            set_root(pg, root)
            download = pg.locator('[data-field="weights"] [data-action="download"]')
            expect(download).to_be_enabled()
            expect(download).to_contain_text("Download cxr-net")
            expect(pg.locator("#valid-note")).to_be_hidden()
            download.click()
            expect(pg.locator('[data-field="weights"] .readiness')).to_have_count(0, timeout=60_000)
            wait_ready(pg)
            assert (offline_home[0] / "weights" / "cxr-net.pt").read_bytes() == payload


def test_a_registered_model_becomes_the_default(browser, offline_home, workspace, tiny_checkpoint):
    """Item 1: with the catalog default absent and a user's model registered, the page picks the usable one."""
    from radfeat.weights.registration import add_weights

    write_catalog(offline_home[1], closed_port_url())
    add_weights("my-net", tiny_checkpoint, log=lambda m: None)
    with backend_and_page(browser, workspace) as (_srv, on):
        expect(on.page.locator("#weights")).to_have_value("my-net")
        expect(on.page.locator("#weights-info .badge.user")).to_contain_text("Your own file")
        expect(on.page.locator("#weights-info")).not_to_contain_text("Downloaded")


def test_wrong_depth_is_blocked_and_the_right_one_proposed(page, tmp_path, tiny_weights, make_patients):
    """Item 2: counts per depth, the depth where the images are proposed, a run that finds none blocked."""
    pg = page
    root = tmp_path / "data"
    make_patients(root, depth=2, n_patients=2, per_folder=2)
    pg.fill("#input-root", str(root))
    pg.select_option("#weights", tiny_weights)
    for depth in ("1", "3"):
        pg.fill("#depth", depth)
        expect(pg.locator("#depth-survey")).to_contain_text("2 → 8 images")
        entry = pg.locator('[data-field="depth"] .readiness, [data-field="input"] .readiness')
        expect(entry).to_contain_text("depth 2")
        expect(pg.locator("#valid-note")).to_be_hidden()
        expect(pg.locator("#extract-btn")).to_be_disabled()
    audit(pg, "no images at the chosen depth")
    pg.locator("#sec-data").screenshot(path=artifact("readiness_wrong_depth.png"))
    pg.get_by_role("button", name="Use folder depth 2").click()
    expect(pg.locator("#depth")).to_have_value("2")
    wait_ready(pg)


def test_existing_output_asks_before_replacing(page, tmp_path, workspace, tiny_weights, make_patients):
    """Item 4: an existing table is never replaced silently: another name is offered, or replacing is chosen."""
    pg = page
    root = tmp_path / "data"
    make_patients(root, depth=1, n_patients=2, per_folder=1)
    out = workspace / "DATA" / "extracted_features" / "cxr_features.csv"
    out.parent.mkdir(parents=True)
    out.write_text("level_1,filename\np0,a.jpg\n")
    set_root(pg, root, tiny_weights)
    pg.fill("#filename", "cxr_features.csv")
    entry = pg.locator('[data-field="filename"] .readiness')
    expect(entry).to_contain_text("already exists")
    expect(pg.locator("#extract-btn")).to_be_disabled()
    expect(pg.locator("#valid-note")).to_be_hidden()
    audit(pg, "output exists")
    pg.locator("#sec-extract").screenshot(path=artifact("readiness_output_exists.png"))
    pg.get_by_role("button", name="Use cxr_features_2.csv").click()
    expect(pg.locator("#filename")).to_have_value("cxr_features_2.csv")
    wait_ready(pg)
    pg.fill("#filename", "cxr_features.csv")
    pg.get_by_role("button", name="Replace the existing table").click()
    expect(entry).to_contain_text("already exists")
    expect(pg.get_by_role("button", name="Keep the existing table")).to_be_visible()
    run_to_outcome(pg)
    assert "p0,a.jpg" not in out.read_text()  # replaced, as the user chose


def test_input_checks_say_what_is_wrong(page, tmp_path, tiny_weights, make_patients):
    """Item 6: a root that is a file, a dates CSV that is not text."""
    pg = page
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    pg.fill("#input-root", str(a_file))
    expect(pg.locator("#folders-summary")).to_contain_text("is a file, not a folder")
    root = tmp_path / "data"
    make_patients(root, depth=1, n_patients=2, per_folder=1)
    pg.fill("#input-root", str(root))
    pg.locator("#master-toggle").check()
    binary = tmp_path / "dates.csv"
    binary.write_bytes(bytes(range(256)) * 64)
    pg.fill("#dates-csv", str(binary))
    expect(problem(pg, "master_table.dates_csv")).to_contain_text("not a text CSV file")
    expect(pg.locator("#filename-col")).to_be_disabled()
    expect(pg.locator("#dates-preview")).to_be_hidden()
    audit(pg, "input checks")


def test_no_stale_words(page, tmp_path, tiny_weights, make_patients):
    """Item 7: hints follow what the user did; the prefix example never echoes an invalid prefix."""
    pg = page
    expect(pg.locator("#filename-hint")).to_contain_text("Follows the type and format")
    pg.fill("#filename", "mine.csv")
    expect(pg.locator("#filename-hint")).not_to_contain_text("Follows the type")
    pg.fill("#prefix", "img-1")
    expect(pg.locator("#prefix-example-line")).to_be_hidden()
    pg.fill("#prefix", "cxr")
    expect(pg.locator("#prefix-example")).to_have_text(re.compile(r"^cxr_densefeatures_0$"))
