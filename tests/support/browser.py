"""Debian's Chromium driven by Playwright, for the browser tests.

`chromium()` launches the real browser at /usr/bin/chromium (Playwright's own browser builds are
never downloaded). `PageWatch` records what a page did that a test may forbid: console errors,
uncaught exceptions, and requests to any origin but the app's own.
"""
from __future__ import annotations

from contextlib import contextmanager
from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-gpu", "--disable-dev-shm-usage"]


@contextmanager
def chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


class PageWatch:
    """Attach to a page before it navigates; read the lists after."""

    def __init__(self, page, origin: str):
        self.origin = _origin(origin)
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.requests: list[str] = []
        self.foreign_requests: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("request", self._request)

    def _console(self, message):
        if message.type == "error":
            self.console_errors.append(message.text)

    def _request(self, request):
        self.requests.append(request.url)
        if _origin(request.url) != self.origin:
            self.foreign_requests.append(request.url)

    def problems(self, allow_console=()) -> list[str]:
        """Console errors (except the `allow_console` substrings), page errors, foreign requests."""
        console = [text for text in self.console_errors if not any(allowed in text for allowed in allow_console)]
        return ([f"console: {text}" for text in console] + [f"exception: {text}" for text in self.page_errors]
                + [f"foreign request: {url}" for url in self.foreign_requests])


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return parts.scheme
    return f"{parts.scheme}://{parts.netloc}"
