"""Issue 14 in the browser, during and after a run: backend loss and restart, the results, words, focus
(items 3, 5, 8, 9, 10).  Real backend on loopback, Debian's Chromium, real engine; axe-core audits each state.
"""

from __future__ import annotations

import re
import urllib.request

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

from helpers import artifact, needs_chromium, slowed  # noqa: E402
from ui_helpers import audit, backend_and_page, page_at, run_to_outcome, set_root, wait_ready  # noqa: E402

pytestmark = needs_chromium
LONG = 120_000


# ---------------------------------------------------------------------------
def test_backend_loss_restart_and_resume(browser, workspace, tiny_weights, tmp_path, make_patients):
    """Item 3: the backend stops mid-run: the page says so (not "failed"); a restarted backend (new port) opens a
    page that kept the settings of this workspace and offers to resume the interrupted run, which finishes."""
    root = tmp_path / "data"
    make_patients(root, depth=1, n_patients=4, per_folder=6)
    with backend_and_page(browser, workspace, slowed(0.3)) as (srv, first):
        pg = first.page
        set_root(pg, root, tiny_weights)
        pg.fill("#prefix", "lost")
        pg.locator(".advanced summary").click()
        pg.fill("#batch-size", "1")
        pg.fill("#filename", "lost_run.csv")
        wait_ready(pg)
        pg.click("#extract-btn")
        expect(pg.locator("#progress-stats")).to_contain_text(re.compile(r"\b[2-9] / 24 images"), timeout=LONG)
        srv.stop()  # the window closed / the backend was stopped: the job is cancelled, its rows kept
        expect(pg.locator("#progress-stage")).to_have_text("Waiting for the radfeat backend…", timeout=30_000)
        expect(pg.locator("#progress-stats")).to_contain_text("rows already extracted are kept")
        expect(pg.locator("#job-result")).to_be_hidden()
        expect(pg.locator("#invalid-warning")).not_to_contain_text("You must select convenient options")
        expect(pg.locator("#invalid-title")).to_contain_text("does not answer")
        expect(pg.locator("#valid-note")).to_be_hidden()
        audit(pg, "backend lost")
        pg.locator("#sec-extract").screenshot(path=artifact("results_backend_lost.png"))

    with backend_and_page(browser, workspace) as (_again, second):  # a new launch: a new port, a new token
        pg = second.page
        expect(pg.locator("#input-root")).to_have_value(str(root))  # settings of this workspace
        expect(pg.locator("#prefix")).to_have_value("lost")
        offer = pg.locator("#partial-runs")
        expect(offer).to_contain_text("lost_run.csv")
        audit(pg, "interrupted run offered")
        pg.locator("#sec-extract").screenshot(path=artifact("results_resume_offer.png"))
        offer.get_by_role("button", name="Resume lost_run.csv").click()
        expect(pg.locator("#job-result")).to_contain_text("Extraction finished", timeout=LONG)
        expect(pg.locator("#job-result")).to_contain_text("resumed")
        assert (workspace / "DATA" / "extracted_features" / "lost_run.csv").is_file()


def test_results_layout_detail_and_focus(browser, ui_server, workspace, tiny_weights, tmp_path, make_patients):
    """Items 5, 8, 10: the run's table at once; focus follows Extract; the preparing stage; a picked row's detail
    in view; the table uses wide windows; pinned columns leave room at 480 px; grid semantics."""
    root = tmp_path / "data"
    make_patients(root, depth=1, n_patients=3, per_folder=2)
    with page_at(browser, ui_server.launch_url, {"width": 1280, "height": 800}) as on:
        pg = on.page
        set_root(pg, root, tiny_weights)
        wait_ready(pg)
        pg.click("#extract-btn")
        expect(pg.locator("#progress-block")).to_be_focused()  # not <body>
        expect(pg.locator("#job-result")).to_contain_text("Extraction finished", timeout=LONG)
        expect(pg.locator("#progress-pct")).to_have_text("100 %")
        # the table of the run, without asking
        expect(pg.locator("#table-panel")).to_be_visible()
        rows = pg.locator("#result-table tbody tr[data-row]")
        expect(rows).to_have_count(6)
        # grid semantics: one tab stop, row indexes, selection
        expect(pg.locator("#result-table")).to_have_attribute("role", "grid")
        assert pg.locator('#result-table tbody tr[tabindex="0"]').count() == 1
        expect(rows.nth(0)).to_have_attribute("aria-rowindex", "2")
        assert pg.evaluate("document.querySelectorAll('[aria-live]:not([aria-live=off])').length") <= 6
        rows.nth(5).click()
        expect(rows.nth(5)).to_have_attribute("aria-selected", "true")
        expect(pg.locator("#thumb-frame img")).to_be_visible()
        box = pg.locator("#detail").bounding_box()
        assert box["y"] < 800 and box["y"] + 40 < 800, f"the detail starts at y = {box['y']}"
        audit(pg, "results at 1280")
        pg.screenshot(path=artifact("results_1280.png"))

        pg.set_viewport_size({"width": 1920, "height": 1080})
        pg.wait_for_timeout(300)
        width = pg.locator("#table-wrap").bounding_box()["width"]
        assert width > 1100, f"the table is {width} px wide at 1920"
        pg.screenshot(path=artifact("results_1920.png"))

        pg.set_viewport_size({"width": 800, "height": 900})
        expect(pg.locator("#result-table thead th.sticky")).to_have_count(3)  # row number, level_1, filename
        audit(pg, "results at 800")
        pg.screenshot(path=artifact("results_800.png"))

        pg.set_viewport_size({"width": 480, "height": 900})
        # row number + one identifying column stay pinned
        expect(pg.locator("#result-table thead th.sticky")).to_have_count(2)
        first_pred = pg.locator("#result-table thead th", has_text="img_predictions_0")
        wrap = pg.locator("#table-wrap").bounding_box()
        assert first_pred.bounding_box()["x"] < wrap["x"] + wrap["width"], "no prediction column visible at 480 px"
        audit(pg, "results at 480")
        pg.screenshot(path=artifact("results_480.png"), full_page=True)
        # the footer names only the providers radfeat can use
        expect(pg.locator("#version")).not_to_contain_text("AzureExecutionProvider")


def test_preparing_stage_is_shown(page, tmp_path, make_patients, tiny_checkpoint):
    """Item 8: before the first image (the ONNX export of a first use) the stage shows, not a static 0 %."""
    from radfeat.synthetic import random_checkpoint
    from radfeat.weights.registration import add_weights

    big = random_checkpoint(tmp_path / "full.pt", seed=3)  # a full-size DenseNet-121: its export takes seconds
    add_weights("fresh-full", big, log=lambda m: None)
    pg = page
    pg.locator("#weights-refresh").click()
    root = tmp_path / "data"
    make_patients(root, depth=1, n_patients=1, per_folder=1)
    set_root(pg, root, "fresh-full")
    wait_ready(pg)
    pg.click("#extract-btn")
    expect(pg.locator("#progress")).to_have_class(re.compile("indeterminate"), timeout=30_000)
    expect(pg.locator("#progress-stats")).to_contain_text("Preparing the model")
    assert "ETA" not in pg.locator("#progress-stats").inner_text()
    assert pg.locator("#progress-pct").inner_text() != "0 %"
    pg.locator("#sec-extract").screenshot(path=artifact("results_preparing.png"))
    expect(pg.locator("#job-result")).to_contain_text("Extraction finished", timeout=LONG)
    expect(pg.locator("#progress")).not_to_have_class(re.compile("indeterminate"))
    # the export happened: the badge says so now
    expect(pg.locator("#weights-info")).to_contain_text("✓ Exported to ONNX")


def test_master_table_in_words_and_its_images(page, tmp_path, workspace, tiny_weights, make_patients):
    """Items 5 and 9: the master summary in words with the unmatched images named and listed; a master row's
    image (no black "No image" box)."""
    pg = page
    root = tmp_path / "data"
    dates = tmp_path / "dates.csv"
    images = make_patients(root, depth=1, n_patients=2, per_folder=2, dates_csv=dates)
    lines = dates.read_text().splitlines()
    dropped = lines.pop()  # one image without a date
    dates.write_text("\n".join(lines) + "\n")
    set_root(pg, root, tiny_weights)
    pg.locator("#master-toggle").check()
    pg.fill("#dates-csv", str(dates))
    expect(pg.locator("#filename-col")).to_have_value("image")
    result = run_to_outcome(pg, timeout=LONG)
    expect(result).to_contain_text(f"The master table has {len(images) - 1} rows")
    missing = dropped.split(",")[0]
    expect(result.locator("details summary")).to_contain_text("1 image without a date")
    result.locator("details summary").click()
    expect(result).to_contain_text(missing)
    assert "unmatched_images" not in result.inner_text()  # words, not a key dump
    audit(pg, "master table finished")
    pg.locator("#sec-extract").screenshot(path=artifact("results_master_summary.png"))
    rows = pg.locator("#result-table tbody tr[data-row]")
    expect(rows).to_have_count(len(images) - 1)
    rows.nth(0).click()
    expect(pg.locator("#thumb-frame img")).to_be_visible()
    pg.locator("#sec-data-out").screenshot(path=artifact("results_master_row.png"))
    result.get_by_role("link", name="Show the list of unmatched items").click()
    expect(pg.locator("#result-table")).to_contain_text(missing)


def test_page_without_token_says_how_to_open_it(ui_server):
    """Item 10: a URL without its token gets a page that says how to open radfeat, not a plain-text 403."""
    req = urllib.request.Request(ui_server.url + "/", headers={"Accept": "text/html"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    body = err.value.read().decode()
    assert err.value.code == 403 and "text/html" in err.value.headers.get("Content-Type", "")
    assert "radfeat gui" in body and "radfeat serve" in body


def test_a_failed_run_is_not_followed_by_valid(page, tmp_path, tiny_checkpoint, make_patients):
    """Item 7: "Options are valid" never sits beside "Extraction failed" for the same options."""
    from radfeat.weights.catalog import Catalog
    from radfeat.weights.registration import add_weights

    add_weights("broken-net", tiny_checkpoint, log=lambda m: None)
    Catalog().get("broken-net").path.write_bytes(b"not a checkpoint any more")  # damaged after registration
    pg = page
    pg.locator("#weights-refresh").click()
    root = tmp_path / "data"
    make_patients(root, depth=1, n_patients=1, per_folder=1)
    set_root(pg, root, "broken-net")
    run_to_outcome(pg, "Extraction failed", timeout=LONG)
    pg.wait_for_timeout(1000)  # the validation that follows the run has answered
    expect(pg.locator("#valid-note")).to_be_hidden()
    audit(pg, "a failed run")
    pg.fill("#prefix", "other")  # other options: they may be valid again
    expect(pg.locator("#valid-note")).to_be_visible()
