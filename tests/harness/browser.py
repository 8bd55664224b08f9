"""A served site and a real browser for page tests: the app under uvicorn on a free loopback port,
Debian Chromium driven by Playwright (never a downloaded browser), keyboard log-in, screenshots
under test-artifacts/screenshots/, and the accessibility check: axe-core injected into the page
and run for WCAG 2.2 A/AA (0 violations).

axe-core's script comes from the ``axe-playwright-python`` package (it ships ``axe.min.js``); it
is evaluated through the DevTools protocol, which the pages' Content-Security-Policy does not
apply to, so the pages under test keep their strict policy.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import uvicorn

from harness.ports import free_tcp_port
from harness.requirements import require
from harness.waiting import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"  # the password make_users gives (harness.web)
# axe-core's tags for WCAG 2.0, 2.1 and 2.2 at levels A and AA.
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@contextmanager
def served(app: Any) -> Iterator[str]:
    """Serve the ASGI app on a free 127.0.0.1 port in a thread; yields its base URL."""
    port = free_tcp_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 15, message="uvicorn to start")
    assert thread.is_alive(), "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright; the test is skipped (or fails under CI) without it."""
    require(os.access(CHROMIUM, os.X_OK), f"needs Debian chromium at {CHROMIUM} (scripts/apt-packages.txt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser: Any, base: str) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page at a bench laptop's size."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(
        base_url=base,
        accept_downloads=True,
        viewport={"width": 1366, "height": 900},
        locale="en-GB",  # a UK bench laptop (navigator.language, Accept-Language)
        timezone_id="Europe/London",
    )
    page = context.new_page()
    page.set_default_timeout(20_000)  # a loaded 2-core CI machine can take seconds per navigation
    try:
        yield page
    finally:
        context.close()


def shot(page: Any, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def focused_id(page: Any) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.id"))


def log_in(page: Any, name: str, path: str, password: str = PASSWORD) -> None:
    """Keyboard only: the login form takes focus, Tab to the password, Enter submits."""
    page.goto(path)
    assert "/login" in page.url, page.url
    page.wait_for_function("document.activeElement && document.activeElement.id === 'f-username'")
    page.keyboard.type(name)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(path), page.url


def scan(page: Any, code: str) -> None:
    """What a barcode scanner does: type the code into the focused field and press Enter."""
    page.keyboard.type(code)
    page.keyboard.press("Enter")


def press(page: Any, button: str) -> None:
    """Press the named button and wait for the page its form post leads to."""
    with page.expect_navigation():
        page.get_by_role("button", name=button).click()


def attach(page: Any, label: str, name: str, content: bytes, media_type: str = "image/png") -> None:
    """Choose a file for the labelled file input, as if picked from the bench laptop's disk."""
    page.get_by_label(label).set_input_files({"name": name, "mimeType": media_type, "buffer": content})


def page_error(page: Any) -> str:
    """The reason a refused form post shows at the top of the page."""
    return str(page.locator("#page-error").inner_text())


@cache
def _axe_source() -> str:
    return files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.2 A/AA violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source())
    options = {"runOnly": {"type": "tag", "values": WCAG_22_AA}, "resultTypes": ["violations"]}
    result = page.evaluate("options => axe.run(document, options)", options)
    return list(result["violations"])


def assert_labelled(page: Any) -> None:
    """Every visible form control has a label (screen readers and keyboard users need one)."""
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
             .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label')).map(el => el.name)"""
    )
    assert unlabelled == [], f"{page.url}: unlabelled controls {unlabelled}"


def assert_accessible(page: Any) -> None:
    """0 axe-core violations at WCAG 2.2 AA, and every visible form control labelled."""
    found = axe_violations(page)
    summary = [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:5]}" for v in found]
    assert found == [], f"{page.url}: " + "; ".join(summary)
    assert_labelled(page)


def check_page(page: Any, name: str) -> Path:
    """The page passes the accessibility check; its screenshot is kept under test-artifacts/."""
    assert_accessible(page)
    return shot(page, name)
