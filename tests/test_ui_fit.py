"""The page's "Fit a classifier" panel: radfeat fit as a job from Extracted data, metrics and ROC drawn."""

from __future__ import annotations

import shutil

from helpers import artifact, synthetic_table
from playwright.sync_api import expect
from ui_helpers import audit


def test_fit_panel_fits_and_draws_the_roc(page, workspace, tiny_weights):
    pg = page
    folder = workspace / "DATA" / "extracted_features"
    folder.mkdir(parents=True)
    table, labels = synthetic_table(workspace, n_patients=20)
    shutil.move(table, folder / "features.csv")
    pg.locator("#files-refresh").click()
    pg.select_option("#result-file", str(folder / "features.csv"))
    pg.locator("#fit-panel summary").click()
    pg.fill("#fit-target", "effusion")
    pg.fill("#fit-folds", "3")
    pg.locator("#fit-run").click()  # no labels: the table has no target column, refused with the CLI's words
    expect(pg.locator("#fit-problem")).to_contain_text("Column 'effusion' is not in the table")
    pg.fill("#fit-labels", labels.name)
    pg.locator("input[name=fit-model][value=mlp]").uncheck()
    pg.locator("#fit-run").click()
    expect(pg.locator("#fit-status")).to_contain_text("Done", timeout=120_000)
    expect(pg.locator(".fit-metrics tr")).to_have_count(2)
    expect(pg.locator(".fit-metrics")).to_contain_text("logistic")
    expect(pg.locator(".fit-roc polyline")).to_have_count(1)
    assert (workspace / "DATA" / "models" / "features_effusion" / "logistic.onnx").is_file()
    audit(pg, "fit panel with results")
    pg.locator("#fit-panel").screenshot(path=str(artifact("ui_fit_panel.png")))
