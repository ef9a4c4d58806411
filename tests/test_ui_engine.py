"""The page's Engine field (Advanced): the Ray engine's options go through the backend's validation."""

from __future__ import annotations

import pytest

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

from helpers import needs_chromium  # noqa: E402

pytestmark = needs_chromium


def test_engine_and_ray_address_are_validated_next_to_their_fields(page, tmp_path, tiny_weights, make_patients):
    pg = page
    root = tmp_path / "data"
    make_patients(root, n_patients=2, per_folder=1)
    pg.fill("#input-root", str(root))
    pg.select_option("#weights", tiny_weights)
    expect(pg.locator("#extract-btn")).to_be_enabled()
    pg.locator("#advanced summary").click()
    pg.select_option("#engine", "ray")
    pg.fill("#ray-address", "not an address")
    expect(pg.locator('[data-problem="ray_address"]')).to_contain_text("Ray address must be auto, HOST:PORT")
    expect(pg.locator("#extract-btn")).to_be_disabled()
    pg.fill("#ray-address", "auto")
    expect(pg.locator('[data-problem="ray_address"]')).to_be_empty()
    expect(pg.locator("#extract-btn")).to_be_enabled()
    pg.select_option("#engine", "local")  # an address without the Ray engine is refused with the CLI's words
    expect(pg.locator('[data-problem="ray_address"]')).to_be_empty()  # the page sends no address for "local"
