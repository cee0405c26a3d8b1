"""Browser tests: headless Debian Chromium driven by Playwright (which never downloads a browser
here). Skipped when /usr/bin/chromium is absent, unless PRYV_REQUIRE_SERVICES=1 (CI), where that
is a failure."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from infra.settings import Settings
from tests.browser.harness import SCREENSHOTS, BrowserWallet, Site, running_site
from tests.conftest import REQUIRE_SERVICES
from tests.wallets import SigningWallet

CHROMIUM = Path(os.environ.get("PRYV_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
async def site(platform_settings: Settings) -> AsyncIterator[Site]:
    require_chromium()
    async with running_site(platform_settings) as running:
        yield running


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def wallet() -> BrowserWallet:
    return BrowserWallet(SigningWallet.create())


@pytest.fixture
async def page(browser: Any, site: Site, wallet: BrowserWallet) -> AsyncIterator[Any]:
    async with dashboard_page(browser, site.dashboard_url, wallet) as opened:
        yield opened


@contextlib.asynccontextmanager
async def dashboard_page(
    browser: Any, dashboard_url: str, wallet: BrowserWallet, **context_options: Any
) -> AsyncIterator[Any]:
    """A fresh browser context on the dashboard with `wallet` installed; fails the test on
    any JavaScript error the page raised."""
    options = {
        "viewport": {"width": 1280, "height": 900},
        "permissions": ["clipboard-read", "clipboard-write"],
        **context_options,
    }
    context = await browser.new_context(**options)
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    await wallet.install(opened)
    await opened.goto(dashboard_url)
    await opened.wait_for_selector("body[data-ready=true]")
    try:
        yield opened
    finally:
        await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot_path(name: str, site: Site) -> str:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS / f"{name}-{site.deployment}.png")
