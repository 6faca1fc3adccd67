"""Debian's headless Chromium driven by Playwright, for the browser tests.

One Chromium per test process (`launch_chromium`, shared by the tests of an xdist worker);
each test gets a `BrowserSession`: a fresh context (no cookies from another test) that records
the URL of every request its pages make and saves screenshots as
test-artifacts/<test name>/<page>.png at the repository root. Playwright's own browsers are
never downloaded: the system's /usr/bin/chromium is launched instead.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Playwright

from .panel import REPO_ROOT

CHROMIUM = "/usr/bin/chromium"
# No sandbox: tests may run as root. The rest keeps Chromium from calling home on its own
# (updates, sync, field trials), so every request it makes comes from a page.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
# Generous for two loaded cores; a test that waits for something slower passes its own timeout.
DEFAULT_TIMEOUT_MS = 20_000
LAPTOP_VIEWPORT = {"width": 1280, "height": 800}


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def origin(url: str) -> tuple[str, str | None, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, parts.hostname, parts.port or default_port


class BrowserSession:
    """A fresh browser context and page on `base_url`, for one test named `test_name`.

    `requested_urls` lists every URL requested by any page of the context, in order.
    """

    def __init__(self, browser: Browser, base_url: str, test_name: str, *, locale: str = "en-US"):
        self.base_url = base_url
        self.artifact_dir = ARTIFACTS_DIR / re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name).strip("_")
        shutil.rmtree(self.artifact_dir, ignore_errors=True)  # no screenshot left from an earlier run
        self.requested_urls: list[str] = []
        self.context = browser.new_context(base_url=base_url, locale=locale, viewport=LAPTOP_VIEWPORT)
        self.context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        self.context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
        self.context.on("request", lambda request: self.requested_urls.append(request.url))
        self.page = self.context.new_page()

    def screenshot(self, name: str) -> Path:
        """The whole current page as <artifact_dir>/<name>.png."""
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        path = self.artifact_dir / f"{name}.png"
        self.page.screenshot(path=path, full_page=True)
        return path

    def foreign_requests(self) -> list[str]:
        """Requested URLs whose origin (scheme, host, port) is not the panel's."""
        own = origin(self.base_url)
        return [url for url in self.requested_urls if origin(url) != own]

    def close(self) -> None:
        self.context.close()
