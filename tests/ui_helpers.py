"""What the browser tests of issue 14 share: axe-core audits inside the page, a page on a given backend, and
the steps most tests take (options filled, ready, Extract and the run's outcome)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def audit(pg, state: str) -> list[dict]:
    """Run axe-core inside the page (loaded by the test, not by the app) and fail on serious or critical issues.

    Returns every violation (minor and moderate included) so a test can say more; ``state`` names the page's state
    in the failure message.  axe-core comes from npm (``scripts/setup --test`` installs it into tests/node_modules).
    """
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing ({AXE}); run scripts/setup --test (npm install axe-core)")
    if not pg.evaluate("() => typeof window.axe === 'object'"):
        pg.add_script_tag(path=str(AXE))
    result = pg.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
    }""")
    bad = [v for v in result if v["impact"] in SERIOUS]
    assert not bad, f"axe-core, {state}: " + "; ".join(f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}"
                                                         for v in bad)
    return result


class PageOn:
    """The page of a given backend in its own browser context (a restarted backend, a second tab)."""

    def __init__(self, browser, url: str, viewport: dict[str, int] | None = None, storage_state: dict | None = None):
        self.ctx = browser.new_context(viewport=viewport or {"width": 1280, "height": 800}, storage_state=storage_state)
        self.page = self.ctx.new_page()
        self.page.set_default_timeout(20_000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.goto(url)

    def close(self) -> None:
        self.ctx.close()
        assert not self.errors, f"JavaScript errors on the page: {self.errors}"


def wait_ready(pg) -> None:
    """Valid and ready: the green note shows and Extract is enabled."""
    from playwright.sync_api import expect

    expect(pg.locator("#valid-note")).to_be_visible()
    expect(pg.locator("#extract-btn")).to_be_enabled()


@contextlib.contextmanager
def page_at(browser, url: str, viewport: dict[str, int] | None = None) -> Iterator[PageOn]:
    """The page at ``url`` (a launch URL with its token) in its own context, loaded: the weights list answered.
    Closed on exit (failing on any JavaScript error)."""
    from playwright.sync_api import expect

    on = PageOn(browser, url, viewport)
    try:
        expect(on.page.locator("#weights")).to_be_enabled()
        yield on
    finally:
        on.close()


@contextlib.contextmanager
def backend_and_page(browser, workspace: Path,
                     extract_fn: Callable[..., Any] | None = None) -> Iterator[tuple[Any, PageOn]]:
    """A fresh backend on loopback for ``workspace`` (its own port and token) and its page, loaded; both stopped
    on exit (stopping a backend the test already stopped is harmless)."""
    from radfeat.server.app import BackgroundServer

    srv = BackgroundServer(workspace, extract_fn=extract_fn).start()
    try:
        with page_at(browser, srv.launch_url) as on:
            yield srv, on
    finally:
        srv.stop()


def set_root(pg, root: Path, weights: str | None = None, depth: int = 1) -> None:
    """The input folder at ``depth`` (and the weights, when given); waits for the folder survey."""
    from playwright.sync_api import expect

    pg.fill("#input-root", str(root))
    pg.fill("#depth", str(depth))
    if weights is not None:
        pg.select_option("#weights", weights)
    expect(pg.locator("#folders-summary")).to_contain_text("selected")


def run_to_outcome(pg, outcome: str = "Extraction finished", timeout: float = 120_000):
    """Ready, Extract, and ``outcome`` in the run's result box; returns that box."""
    from playwright.sync_api import expect

    wait_ready(pg)
    pg.click("#extract-btn")
    result = pg.locator("#job-result")
    expect(result).to_contain_text(outcome, timeout=timeout)
    return result
