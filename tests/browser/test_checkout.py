"""Buying credit from the dashboard: a signed checkout, the redirect to (a local fake of) Stripe
Checkout, and the credit on the Credits page once Stripe's webhook arrives."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from tests.browser.conftest import require_chromium, screenshot_path
from tests.browser.harness import BrowserWallet, Site, running_site
from tests.browser.test_dashboard import goto, sign_in
from tests.fakes.stripe_api import FakeStripe, running_fake_stripe, webhook_request

SECRET = "whsec_dashboard_test"


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[FakeStripe]:
    with running_fake_stripe() as fake:
        yield fake


@pytest.fixture
async def site(platform_settings: Settings, stripe_api: FakeStripe) -> AsyncIterator[Site]:
    require_chromium()
    settings = dataclasses.replace(
        platform_settings,
        stripe_secret_key="sk_test_dashboard",
        stripe_webhook_secret=SECRET,
        stripe_api_base=stripe_api.url,
        public_url="https://api.pryv.test",
    )
    async with running_site(settings) as running:
        yield running


async def test_checkout_redirects_to_stripe_and_credits_arrive(
    page: Any, site: Site, wallet: BrowserWallet, stripe_api: FakeStripe
) -> None:
    await sign_in(page)
    await goto(page, "credits", "#balances")
    assert await page.locator("#billing-unavailable").count() == 0
    await page.screenshot(path=screenshot_path("credits-checkout", site), full_page=True)
    await page.click("button[data-pack='pack_50']")
    await page.wait_for_url(f"{stripe_api.url}/pay/**")
    assert "Fake Stripe Checkout" in await page.inner_text("h1")
    assert wallet.signed[-1].startswith("Pryv API key mgmt | action=checkout | keyId= |")
    session_id = page.url.rsplit("/", 1)[1]

    body, headers = webhook_request(stripe_api.complete_session(session_id), SECRET)
    async with httpx.AsyncClient(base_url=site.api_url) as api:
        delivered = await api.post("/api/v1/billing/webhook", content=body, headers=headers)
    assert delivered.json()["result"] == "recorded", delivered.text
    await site.settled()

    await page.goto(f"{site.dashboard_url}/#/credits")
    await page.wait_for_selector("[data-testid=available-live]:has-text('$52.00')")

    # An amount below the bounds (past the form's own check) is the API's 400, shown as such.
    await page.evaluate("document.getElementById('custom-usd').removeAttribute('min')")
    await page.fill("#custom-usd", "1")
    await page.click("#custom-buy")
    await page.wait_for_selector("#alert:has-text('invalid_params')")
