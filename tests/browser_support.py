"""Playwright (the Python package) driving Debian's chromium: headless, no sandbox (root in CI),
background networking off, so a page's only requests are its own."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("KIRAG_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter",
]
# screenshots of the pages, for docs/images (set to write them there)
SCREENSHOTS = os.environ.get("KIRAG_SCREENSHOTS")


@pytest.fixture(scope="module")
def browser():
    """A browser for one module's tests, closed when they end: while Playwright's sync API is
    started it runs its event loop in the main thread, and an asyncio test run in the same
    process meanwhile fails ("Runner.run() cannot be called from a running event loop")."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: the Makefile's browser target installs chromium")
        pytest.skip(f"{CHROMIUM} missing (apt-get install -y chromium)")
    driver = playwright.sync_playwright().start()
    try:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield launched
        launched.close()
    finally:
        driver.stop()


class PageWatch:
    """A page with every console error, page error and request recorded; with `block_network`
    every request but those in `allow` is aborted (and recorded as blocked)."""

    def __init__(self, browser, block_network: bool, allow: tuple[str, ...] = ()):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.blocked: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        if block_network:

            def block(route):
                if route.request.url in allow:  # the page's own file
                    route.continue_()
                    return
                self.blocked.append(route.request.url)
                route.abort()

            self.context.route("**/*", block)

    def close(self) -> None:
        self.context.close()


def screenshot(page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / name), full_page=False)
