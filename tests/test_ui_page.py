"""The Image Extraction page, end to end: real backend in a thread, real Chromium (Debian's), real engine.

Playwright drives ``/usr/bin/chromium`` through ``executable_path`` (no browser download).
Each section of the page is saved as a screenshot in ``tests/artifacts/``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

from helpers import artifact, needs_chromium  # noqa: E402
from ui_helpers import audit  # noqa: E402

WARNING = "You must select convenient options for feature generation"
LONG = 180_000  # ms: the first extraction also exports the checkpoint to ONNX

pytestmark = needs_chromium


def problem(pg: sync_api.Page, field: str) -> sync_api.Locator:
    return pg.locator(f'[data-problem="{field}"]')


def set_root(pg: sync_api.Page, root: Path, weights: str) -> None:
    pg.fill("#input-root", str(root))
    pg.select_option("#weights", weights)
    expect(pg.locator("#folders-summary")).to_contain_text("selected")


def wait_valid(pg: sync_api.Page) -> None:
    expect(pg.locator("#valid-note")).to_be_visible()
    expect(pg.locator("#extract-btn")).to_be_enabled()


# ---------------------------------------------------------------------------
def test_validation_messages_appear_and_disappear(page, tmp_path, tiny_weights, make_patients):
    pg = page
    root = tmp_path / "data"
    make_patients(root, depth=2, n_patients=3, per_folder=1, dates_csv=tmp_path / "dates.csv")

    # nothing chosen yet: the MEDomics warning lists what to do, the button is disabled; the root field is not
    # marked red before the user has typed anything in it (issue 14, item 7)
    expect(pg.locator("#invalid-warning")).to_contain_text(WARNING)
    expect(pg.locator("#problem-list")).to_contain_text(re.compile("folder", re.I))
    expect(pg.locator("#extract-btn")).to_be_disabled()
    expect(problem(pg, "input")).to_be_empty()
    expect(pg.locator("#input-root")).not_to_have_attribute("aria-invalid", "true")

    # a folder that does not exist
    pg.fill("#input-root", str(tmp_path / "nope"))
    expect(problem(pg, "input")).to_contain_text("not found")
    expect(pg.locator("#input-root")).to_have_attribute("aria-invalid", "true")
    expect(pg.locator("#folders-summary")).to_contain_text("not found")

    # the real folder, depth 2: its folders are listed, all selected; the options become valid
    pg.fill("#input-root", str(root))
    pg.fill("#depth", "2")
    pg.select_option("#weights", tiny_weights)
    expect(pg.locator("#folders-summary")).to_have_text("6 of 6 folders selected")
    expect(pg.locator("#folder-list input[type=checkbox]")).to_have_count(6)
    expect(problem(pg, "input")).to_be_empty()
    wait_valid(pg)
    expect(pg.locator("#invalid-warning")).to_be_hidden()
    expect(pg.locator("#output-path-value")).to_have_text(
        re.compile(r"DATA[/\\]extracted_features[/\\]image_extracted_features\.csv$"))

    # the weight set shows what it really predicts
    expect(pg.locator("#weights-info .chip.trained")).to_have_count(15)
    expect(pg.locator("#weights-info .chip.untrained")).to_have_count(3)

    # bad prefix -> message next to the field and in the warning list; fixing it clears both
    pg.fill("#prefix", "img-1")
    expect(problem(pg, "prefix")).to_contain_text("letters, digits and underscores")
    expect(pg.locator("#problem-list")).to_contain_text("Column prefix")
    expect(pg.locator("#extract-btn")).to_be_disabled()
    pg.fill("#prefix", "img1")
    expect(problem(pg, "prefix")).to_be_empty()

    # no feature family
    pg.uncheck("#features-dense")
    pg.uncheck("#features-predictions")
    expect(problem(pg, "features")).to_contain_text("at least one")
    pg.check("#features-predictions")
    expect(problem(pg, "features")).to_be_empty()

    # bad output name
    pg.fill("#filename", "my table.csv")
    expect(problem(pg, "filename")).to_contain_text(".csv")
    pg.fill("#filename", "image_extracted_features.csv")
    expect(problem(pg, "filename")).to_be_empty()

    # no folder selected; then a few with the filter + individual boxes
    pg.uncheck("#folders-all")
    expect(problem(pg, "select")).to_contain_text("at least one")
    expect(pg.locator("#folders-summary")).to_have_text("0 of 6 folders selected")
    pg.fill("#folders-filter", "p2")
    expect(pg.locator("#folder-list input[type=checkbox]")).to_have_count(2)
    for box in pg.locator("#folder-list input[type=checkbox]").all():
        box.check()
    pg.fill("#folders-filter", "")
    expect(pg.locator("#folders-summary")).to_have_text("2 of 6 folders selected")
    expect(problem(pg, "select")).to_be_empty()
    wait_valid(pg)
    audit(pg, "section1 select data")
    pg.locator("#sec-data").screenshot(path=artifact("section1_select_data.png"))

    # master table: its problems appear when it is switched on, the dates CSV fills the column pickers
    pg.locator("#master-toggle").check()
    expect(pg.locator("#master-panel")).to_be_visible()
    expect(problem(pg, "master_table.dates_csv")).to_contain_text("CSV")
    expect(pg.locator("#extract-btn")).to_be_disabled()
    expect(pg.locator("#patient-level option")).to_have_count(2)
    pg.fill("#dates-csv", str(tmp_path / "dates.csv"))
    expect(pg.locator("#filename-col")).to_be_enabled()
    expect(pg.locator("#filename-col")).to_have_value("image")  # guessed from the column names
    expect(pg.locator("#date-col")).to_have_value("taken_at")
    expect(pg.locator("#dates-preview")).to_be_visible()
    expect(problem(pg, "master_table.dates_csv")).to_be_empty()
    pg.select_option("#date-col", "image")
    expect(problem(pg, "master_table.date_column")).to_contain_text("differ")
    pg.select_option("#date-col", "taken_at")
    expect(problem(pg, "master_table.date_column")).to_be_empty()
    pg.select_option("#patient-level", "1")
    pg.check("#patient-int")
    wait_valid(pg)
    audit(pg, "section2 extraction type")
    pg.locator("#sec-type").screenshot(path=artifact("section2_extraction_type.png"))
    pg.locator("#master-toggle").uncheck()
    expect(pg.locator("#master-panel")).to_be_hidden()
    wait_valid(pg)

    # the problem list links focus their field
    pg.fill("#prefix", "")
    link = pg.locator("#problem-list a", has_text="Column prefix")
    expect(link).to_be_visible()
    audit(pg, "section3 invalid options")
    pg.locator("#sec-extract").screenshot(path=artifact("section3_invalid_options.png"))
    link.click()
    expect(pg.locator("#prefix")).to_be_focused()


def test_extract_progress_table_chart_then_cancel_and_resume(page, tmp_path, workspace, tiny_weights,
                                                             make_patients):
    pg = page
    root = tmp_path / "data"
    images = make_patients(root, depth=1, n_patients=3, per_folder=2)
    (root / "p1" / "notes.txt").write_text("not an image")  # not used: counted and named in the result
    set_root(pg, root, tiny_weights)
    pg.select_option("#preprocess", "medomics")
    wait_valid(pg)

    # ── run 1: to the end ────────────────────────────────────────────
    pg.click("#extract-btn")
    expect(pg.locator("#progress-block")).to_be_visible()
    # (six tiny images may finish within one poll: the cancel button is checked on the long run 2)
    expect(pg.locator("#progress")).to_have_attribute("aria-valuenow", "100", timeout=LONG)
    expect(pg.locator("#progress-pct")).to_have_text("100 %")
    expect(pg.locator("#job-result")).to_contain_text("Extraction finished", timeout=LONG)
    expect(pg.locator("#job-result")).to_contain_text(f"{len(images)} images")
    expect(pg.locator("#job-result")).to_contain_text("1 file or folder of the input not used")
    expect(pg.locator("#progress-stats")).to_contain_text(f"{len(images)} / {len(images)} images")
    expect(pg.locator("#progress-stats")).to_contain_text("images/s")
    expect(pg.locator("#cancel-btn")).to_be_hidden()
    # the table now exists: running again would replace it, so the page asks first (issue 14, item 4)
    expect(pg.locator('[data-field="filename"] .readiness')).to_contain_text("already exists")
    expect(pg.locator("#extract-btn")).to_be_disabled()
    out = workspace / "DATA" / "extracted_features" / "image_extracted_features.csv"
    assert out.is_file()
    pg.locator("#log-details summary").click()
    expect(pg.locator("#log")).to_contain_text("Finished")
    assert "Traceback" not in pg.locator("#log").inner_text()
    audit(pg, "section3 extract done")
    pg.locator("#sec-extract").screenshot(path=artifact("section3_extract_done.png"))

    # ── the result table ────────────────────────────────────────────
    expect(pg.locator("#result-file")).to_have_value(str(out))
    pg.locator("#table-toggle").check()
    rows = pg.locator("#result-table tbody tr[data-row]")
    expect(rows).to_have_count(len(images))
    expect(pg.locator("#table-summary")).to_contain_text(f"{len(images)} rows")
    headers = pg.locator("#result-table thead th")
    expect(headers.nth(1)).to_have_text("level_1")
    expect(headers.nth(2)).to_have_text("filename")
    # identification columns stay put while the features scroll (sticky)
    assert pg.locator("#result-table thead th.sticky").count() == 3
    # dense columns are hidden by default; showing them widens the table
    assert not any("densefeatures" in h for h in headers.all_inner_texts())
    pg.uncheck("#hide-dense")
    expect(pg.locator("#result-table thead th", has_text="img_densefeatures_0")).to_have_count(1)
    pg.check("#hide-dense")

    # keyboard: focus a row, move down, Enter picks it
    rows.nth(0).focus()
    pg.keyboard.press("ArrowDown")
    expect(rows.nth(1)).to_be_focused()
    pg.keyboard.press("Enter")
    expect(rows.nth(1)).to_have_class(re.compile("picked"))
    expect(pg.locator("#detail")).to_be_visible()
    img = pg.locator("#thumb-frame img")
    expect(img).to_have_attribute("src", re.compile("^data:image/png;base64,"))
    assert pg.evaluate("document.querySelector('#thumb-frame img').naturalWidth") > 0
    filename = rows.nth(1).locator("td").nth(1).inner_text()
    expect(pg.locator("#thumb-caption")).to_contain_text(filename)

    # the chart: 18 heads, names from the weight set, untrained heads marked as such
    expect(pg.locator("#chart svg g.bar")).to_have_count(18)
    expect(pg.locator("#chart svg g.bar.untrained")).to_have_count(3)
    expect(pg.locator("#chart svg g.bar.untrained text.label").first).to_contain_text("(untrained)")
    labels = pg.locator("#chart svg g.bar.trained text.label").all_text_contents()
    assert "Atelectasis" in labels and len(labels) == 15
    expect(pg.locator("#chart-title")).to_contain_text(tiny_weights)
    audit(pg, "section4 extracted data")
    pg.locator("#sec-data-out").screenshot(path=artifact("section4_extracted_data.png"))

    # ── run 2: a bigger set, cancelled, then resumed ───────────────────
    big = tmp_path / "big"
    make_patients(big, depth=1, n_patients=100, per_folder=6, size=(120, 100), seed=7)
    set_root(pg, big, tiny_weights)
    expect(pg.locator("#folders-summary")).to_have_text("100 of 100 folders selected")
    pg.fill("#filename", "second_run.csv")
    pg.locator(".advanced summary").click()
    pg.fill("#batch-size", "1")
    pg.select_option("#device", "cpu")
    wait_valid(pg)
    pg.click("#extract-btn")
    expect(pg.locator("#cancel-btn")).to_be_visible()
    expect(pg.locator("#extract-btn")).to_be_disabled()
    # some rows done (so there is something to resume), not all: cancel now
    expect(pg.locator("#progress-stats")).to_contain_text(re.compile(r"\b[1-9]\d* / 600 images"), timeout=LONG)
    pg.click("#cancel-btn")
    expect(pg.locator("#job-result")).to_contain_text("Extraction cancelled", timeout=LONG)
    expect(pg.locator("#progress-stage")).to_have_text("Cancelled")
    now = int(pg.locator("#progress").get_attribute("aria-valuenow"))
    assert now < 100
    expect(pg.locator("#job-result")).to_contain_text("resumes")
    expect(pg.locator("#log")).to_contain_text("Cancel")
    expect(pg.locator("#extract-btn")).to_be_enabled()
    assert not (workspace / "DATA" / "extracted_features" / "second_run.csv").exists()
    audit(pg, "section3 extract cancelled")
    pg.locator("#sec-extract").screenshot(path=artifact("section3_extract_cancelled.png"))

    pg.click("#extract-btn")
    expect(pg.locator("#job-result")).to_contain_text("Extraction finished", timeout=LONG)
    expect(pg.locator("#job-result")).to_contain_text("600 images")
    expect(pg.locator("#job-result")).to_contain_text("resumed")
    expect(pg.locator("#result-file")).to_have_value(re.compile(r"second_run\.csv$"))
    expect(pg.locator("#table-summary")).to_contain_text("600 rows")
    expect(pg.locator("#page-info")).to_have_text("Rows 1–50 of 600")
    pg.click("#page-next")
    expect(pg.locator("#page-info")).to_have_text("Rows 51–100 of 600")
    expect(pg.locator("#result-table tbody th.rownum").first).to_have_text("51")


def test_backend_errors_are_readable(page, tmp_path, tiny_weights, make_patients):
    pg = page
    # the page's message cleaner, in the real browser (the module is cached: this does not re-run it)
    cleaned = pg.evaluate("""async () => (await import('/js/status.js')).readable(
        'Traceback (most recent call last):\\n  File "x.py", line 3, in f\\n    boom()\\nValueError: the CSV is empty')""")
    assert cleaned == "the CSV is empty"

    # an RPC answered with a stack trace shows one readable sentence in the banner
    root = tmp_path / "data"
    make_patients(root, depth=1, n_patients=2, per_folder=1)

    def fail_read_table(route, request):
        if request.post_data_json and request.post_data_json.get("method") == "read_table":
            route.fulfill(status=200, content_type="application/json", body=(
                '{"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": '
                '"Traceback (most recent call last):\\n  File \\"table.py\\", line 9\\nOSError: disk unplugged"}}'))
        else:
            route.continue_()

    pg.route("**/rpc", fail_read_table)
    pg.evaluate("""() => { const s = document.getElementById('result-file');
        s.replaceChildren(new Option('x.csv', '/nowhere/x.csv')); }""")
    pg.locator("#table-toggle").check()
    expect(pg.locator("#banner")).to_be_visible()
    expect(pg.locator("#banner-text")).to_have_text("disk unplugged")
    assert "Traceback" not in pg.locator("#banner").inner_text()
    pg.unroute("**/rpc")
    pg.click("#banner-close")
    expect(pg.locator("#banner")).to_be_hidden()

    # a real backend refusal (a path outside everything chosen) reads as a sentence, too
    pg.evaluate("""() => { const s = document.getElementById('result-file');
        s.replaceChildren(new Option('passwd', '/etc/passwd')); s.dispatchEvent(new Event('change')); }""")
    expect(pg.locator("#banner")).to_be_visible()
    text = pg.locator("#banner-text").inner_text()
    assert text and "Traceback" not in text and "File \"" not in text


def test_narrow_window_and_keyboard(browser, ui_server, tmp_path, tiny_weights, make_patients):
    root = tmp_path / "data"
    make_patients(root, depth=1, n_patients=2, per_folder=1)
    ctx = browser.new_context(viewport={"width": 420, "height": 800})
    pg = ctx.new_page()
    try:
        pg.goto(ui_server.launch_url)
        expect(pg.locator("#conn")).to_have_attribute("data-state", "up")
        # keyboard only: the skip link first, then the root folder field
        pg.keyboard.press("Tab")
        expect(pg.locator(".skip-link")).to_be_focused()
        pg.keyboard.press("Tab")
        expect(pg.locator("#input-root")).to_be_focused()
        pg.keyboard.type(str(root))
        pg.keyboard.press("Tab")
        expect(pg.locator("#depth")).to_be_focused()
        expect(pg.locator("#folders-summary")).to_have_text("2 of 2 folders selected")
        pg.select_option("#weights", tiny_weights)
        pg.locator("#master-toggle").focus()
        pg.keyboard.press("Space")
        expect(pg.locator("#master-panel")).to_be_visible()
        pg.keyboard.press("Space")
        expect(pg.locator("#master-panel")).to_be_hidden()
        wait_valid(pg)
        # every control has an accessible name
        unnamed = pg.evaluate("""() => [...document.querySelectorAll('input, select, button')]
            .filter(e => e.offsetParent !== null)
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                         && !e.getAttribute('aria-labelledby') && !(e.textContent || '').trim())
            .map(e => e.id || e.outerHTML.slice(0, 60))""")
        assert unnamed == []
        # nothing sticks out sideways
        assert pg.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        pg.screenshot(path=artifact("narrow_window.png"), full_page=True)
    finally:
        ctx.close()
