"""The page's DICOM fields: header columns, views, VOI LUT and master-table dates from the headers."""

from __future__ import annotations

import pandas as pd
import pytest
from dicom_support import make_dicom
from PIL import Image

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

from helpers import artifact, needs_chromium  # noqa: E402
from ui_helpers import audit  # noqa: E402

pytestmark = needs_chromium
LONG = 180_000  # ms: the first extraction also exports the checkpoint to ONNX


def problem(pg, field: str):
    return pg.locator(f'[data-problem="{field}"]')


def set_root(pg, root, weights: str) -> None:
    pg.fill("#input-root", str(root))
    pg.select_option("#weights", weights)
    expect(pg.locator("#folders-summary")).to_contain_text("selected")


def wait_valid(pg) -> None:
    expect(pg.locator("#valid-note")).to_be_visible()
    expect(pg.locator("#extract-btn")).to_be_enabled()


def test_dicom_fields_validate_and_run(page, tmp_path, workspace, tiny_weights):
    pg = page
    root = tmp_path / "pacs"
    make_dicom(root / "p1" / "IM0001", view="PA", patient="P1", seed=1)
    make_dicom(root / "p1" / "IM0002", view="AP", patient="P1", seed=2)
    (root / "p2").mkdir()
    Image.new("L", (64, 64), 90).save(root / "p2" / "photo.png")
    set_root(pg, root, tiny_weights)

    # a keyword pydicom does not know: the CLI's words next to the field, Extract disabled
    pg.fill("#dicom-tags", "PatientID,Bogus")
    expect(problem(pg, "dicom_tags")).to_contain_text("Unknown DICOM tag keyword 'Bogus'")
    expect(pg.locator("#extract-btn")).to_be_disabled()
    pg.fill("#dicom-tags", "PatientID,ViewPosition")
    pg.fill("#views", "P-A")
    expect(problem(pg, "views")).to_contain_text("ViewPosition codes")
    pg.fill("#views", "pa")
    pg.check("#dicom-voi-lut")
    wait_valid(pg)
    expect(problem(pg, "dicom_tags")).to_have_text("")
    audit(pg, "DICOM fields")
    pg.locator("#sec-type").screenshot(path=artifact("section2_dicom_fields.png"))

    pg.click("#extract-btn")
    expect(pg.locator("#job-result")).to_contain_text("Extraction finished", timeout=LONG)
    out = workspace / "DATA" / "extracted_features" / "image_extracted_features.csv"
    table = pd.read_csv(out, dtype=str)
    assert list(table.columns[:4]) == ["level_1", "filename", "PatientID", "ViewPosition"]
    assert table[["filename", "PatientID", "ViewPosition"]].values.tolist() == [["IM0001", "P1", "PA"]]

    # master table with dates from the headers: no dates CSV needed, tag columns refused there
    pg.check("#master-toggle")
    expect(problem(pg, "dicom_tags")).to_contain_text("not available in a master table")
    pg.fill("#dicom-tags", "")
    expect(problem(pg, "master_table.dates_csv")).to_contain_text("CSV of image dates")
    pg.check("#dates-from-dicom")
    expect(pg.locator("#dates-csv")).to_be_hidden()
    # the first table exists: the page offers a free name rather than replacing it (issue 14, item 4)
    pg.get_by_role("button", name="Use image_extracted_features_2.csv").click()
    wait_valid(pg)
