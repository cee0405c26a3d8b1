"""Buying credit from the dashboard: a signed checkout, the redirect to (a local fake of) Stripe
Checkout, and the credit on the Credits page once Stripe's webhook arrives."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.settings import Settings
from tests.browser.conftest import dashboard_page, require_chromium, screenshot_path
from tests.browser.harness import BrowserWallet, Site, running_site
from tests.browser.test_dashboard import goto, sign_in
from tests.fakes.stripe_api import FakeStripe, running_fake_stripe, webhook_request
from tests.served import served_pryv
from tests.wallets import SigningWallet

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


async def test_checkout_round_trip_lands_on_the_dashboard_on_its_ports(
    browser: Any, wallet: BrowserWallet, stripe_api: FakeStripe, tmp_path: Path
) -> None:
    """`pryv serve --port A --dashboard-port B` as a user runs it: pay on (fake) Stripe's page,
    land back on B's Credits page, which follows the payment until the webhook's credit is in."""
    env = {
        "PRYV_STRIPE_SECRET_KEY": "sk_test_round_trip",
        "PRYV_STRIPE_WEBHOOK_SECRET": SECRET,
        "PRYV_STRIPE_API_BASE": stripe_api.url,
    }
    with served_pryv(tmp_path / "pryv", env) as served:
        async with dashboard_page(browser, served.dashboard_url, wallet) as page:
            await sign_in(page)
            await goto(page, "credits", "#balances")
            await page.click("button[data-pack='pack_50']")
            await page.wait_for_url(f"{stripe_api.url}/pay/**")
            session_id = page.url.rsplit("/", 1)[1]

            await page.click("#pay")
            await page.wait_for_url(f"{served.dashboard_url}/#/credits?checkout=success*")
            assert f"session={session_id}" in page.url
            await page.wait_for_selector("#checkout-status[data-state=paid]")
            assert "$50.00" in await page.inner_text("#checkout-status")

            body, headers = webhook_request(stripe_api.paid_events[session_id], SECRET)
            async with httpx.AsyncClient(base_url=served.api_url, timeout=30) as api:
                delivered = await api.post("/api/v1/billing/webhook", content=body, headers=headers)
            assert delivered.json()["result"] == "recorded", delivered.text
            await page.wait_for_selector("#checkout-status[data-state=credited]", timeout=90_000)
            await page.wait_for_selector("[data-testid=available-live]:has-text('$52.00')")

            # Another wallet's session learns nothing about this checkout.
            stranger = BrowserWallet(SigningWallet.create())
            async with dashboard_page(browser, served.dashboard_url, stranger) as other:
                await sign_in(other)
                seen = await other.evaluate(
                    f"fetch('/app/api/checkout/{session_id}').then((r) => r.json())"
                )
            assert seen["state"] == "unknown" and seen["usdAmount"] is None

            # Cancel on Stripe's page: back on the same Credits page, told nothing was charged.
            await page.click("button[data-pack='pack_50']")
            await page.wait_for_url(f"{stripe_api.url}/pay/**")
            await page.click("#cancel")
            await page.wait_for_selector("#checkout-status[data-state=canceled]")
            assert page.url.startswith(f"{served.dashboard_url}/#/credits?checkout=cancel")
