"""Fixtures of the browser tests: Debian's chromium through Playwright, real processes.

The server and clients are real ``python -m fednet`` processes (the
end-to-end tests' ``Cluster``); the browser is ``/usr/bin/chromium``, never
a browser downloaded by Playwright.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


playwright_sync = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
WIDE, PHONE = 1280, 390


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Start one headless chromium for this module.

    Module scope, not session: while it runs, Playwright's sync API keeps an
    event loop running in this thread, which async tests after it cannot share.
    """
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """Open a 1280 px wide page; fail the test on any JavaScript error."""
    context = browser.new_context(viewport={"width": WIDE, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.set_default_timeout(60_000)
    yield tab
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def screenshot(tab: Any, name: str, width: int) -> Path:
    """Save a full-page screenshot at ``width`` px under test-artifacts/browser/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.set_viewport_size({"width": width, "height": 900})
    tab.evaluate("window.scrollTo(0, 0)")
    tab.wait_for_timeout(300)  # let the charts follow the new width
    path = ARTIFACTS / f"{name}-{width}.png"
    tab.screenshot(path=str(path), full_page=True)
    return path
