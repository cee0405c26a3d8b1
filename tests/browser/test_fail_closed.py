"""Wrong signatures fail closed in the browser: no session, and no destructive action, unless
the signed-in wallet itself signed — with the API's own 403 code shown to the user."""

from __future__ import annotations

from typing import Any

from domain import ids
from projections import keys as keys_projection
from tests.browser.conftest import screenshot_path
from tests.browser.harness import BrowserWallet, Site
from tests.browser.test_dashboard import create_key, goto, sign_in
from tests.wallets import SigningWallet


async def test_sign_in_signed_by_another_key_is_refused(
    page: Any, site: Site, wallet: BrowserWallet
) -> None:
    wallet.signer = SigningWallet.create()
    await page.click("#signin-button")
    await page.wait_for_selector("#alert:has-text('SIGNATURE_INVALID')")
    assert await page.locator("[data-testid=wallet]").count() == 0
    assert await page.evaluate("fetch('/auth/session').then((r) => r.status)") == 401
    await page.screenshot(path=screenshot_path("signin-wrong-key", site))


async def test_sign_in_with_a_garbage_signature_is_refused(
    page: Any, site: Site, wallet: BrowserWallet
) -> None:
    wallet.garbage = True
    await page.click("#signin-button")
    await page.wait_for_selector("#alert:has-text('SIGNATURE_VERIFY_ERROR')")
    assert await page.locator("[data-testid=wallet]").count() == 0
    assert await page.evaluate("fetch('/app/api/balance').then((r) => r.status)") == 401


async def test_actions_signed_by_another_key_are_refused(
    page: Any, site: Site, wallet: BrowserWallet
) -> None:
    await sign_in(page)
    secret = await create_key(page, "kept")
    await page.click("#secret-done")
    key_id = secret.split("_")[2]

    wallet.signer = SigningWallet.create()  # the wallet now signs with a different key
    await goto(page, "keys", "#create-key-form")
    await page.fill("#key-name", "should not exist")
    await page.click("#create-key")
    await page.wait_for_selector("#alert:has-text('SIGNATURE_INVALID')")
    assert await page.locator("#new-secret").count() == 0
    await page.screenshot(path=screenshot_path("create-wrong-key", site))

    await page.click(f"button[data-revoke='{key_id}']")
    await page.click("#revoke-confirm")
    await page.wait_for_selector("#alert:has-text('SIGNATURE_INVALID')")

    await goto(page, "settings", "#settings-form")
    await page.check("#mode-off")
    await page.click("#save-settings")
    await page.wait_for_selector("#alert:has-text('SIGNATURE_INVALID')")

    await site.settled()
    account = str(ids.account_id(wallet.account.address.lower()))
    rows = await keys_projection.list_keys(site.platform.read_store, account)
    assert [(r.name, r.status) for _p, r in rows] == [("kept", "active")]
    from projections.settings import read_settings

    assert await read_settings(site.platform.read_store, account) == {}
