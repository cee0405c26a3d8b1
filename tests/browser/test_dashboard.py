"""The dashboard in a real browser (headless Chromium), over both deployments: wallet sign-in,
keys, credits, usage, models, settings and docs — each flow saves a screenshot under
artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from domain import ids
from projections import keys as keys_projection
from projections import ledger
from projections import settings as settings_projection
from tests.browser.conftest import screenshot_path
from tests.browser.harness import BrowserWallet, Site
from tests.evidence import OPERATOR


async def sign_in(page: Any) -> None:
    """Keyboard only: focus the button and press Enter."""
    await page.focus("#signin-button")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("[data-testid=wallet]")


async def goto(page: Any, route: str, ready: str) -> None:
    await page.evaluate(f"window.location.hash = '#/{route}'")
    await page.wait_for_selector(ready)


async def create_key(page: Any, name: str, *, env: str = "test", **fields: str) -> str:
    await goto(page, "keys", "#create-key-form")
    await page.fill("#key-name", name)
    await page.check(f"#env-{env}")
    if env == "test":
        await page.select_option("#key-models", ["pryv-echo"])
    for selector, value in fields.items():
        await page.fill(f"#{selector}", value)
    await page.click("#create-key")
    await page.wait_for_selector("#new-secret")
    return str(await page.inner_text("[data-testid=secret]"))


async def account_keys(site: Site, wallet: BrowserWallet) -> list[keys_projection.KeyRecord]:
    await site.settled()
    account = str(ids.account_id(wallet.account.address.lower()))
    rows = await keys_projection.list_keys(site.platform.read_store, account)
    return [record for _pos, record in rows]


async def test_sign_in(page: Any, site: Site, wallet: BrowserWallet) -> None:
    await page.wait_for_selector("#signin-button")
    await page.screenshot(path=screenshot_path("signin", site))
    await sign_in(page)
    assert await page.get_attribute("[data-testid=wallet]", "title") == (
        wallet.account.address.lower()
    )
    [message] = wallet.signed
    host = site.dashboard_url.removeprefix("http://")
    assert message.startswith(f"{host} wants you to sign in with your Ethereum account:\n")
    assert f"\n{wallet.account.address}\n" in message  # EIP-55, though the wallet said lower case
    assert "\nChain ID: 1\n" in message and "\nExpiration Time: " in message
    await page.wait_for_selector("#create-key-form")
    # Only test models in this catalog (the embedded default's): the form starts on Test.
    assert await page.is_checked("#env-test") and not await page.is_checked("#env-live")
    await page.screenshot(path=screenshot_path("keys-signed-in", site))

    # The session survives a reload (cookie), and signing out ends it on the server too.
    await page.reload()
    await page.wait_for_selector("[data-testid=wallet]")
    await page.click("#signout")
    await page.wait_for_selector("#signin-button")
    status = await page.evaluate("fetch('/app/api/keys').then((r) => r.status)")
    assert status == 401


async def test_create_key_shows_the_secret_once(
    page: Any, site: Site, wallet: BrowserWallet
) -> None:
    await sign_in(page)
    secret = await create_key(
        page, "CI key", **{"key-rpm": "60", "key-budget": "25.5", "key-expiry": "30"}
    )
    assert re.fullmatch(r"pryv_test_[0-9A-Za-z]{16}_[0-9A-Za-z]{49}", secret)
    assert "shown" in await page.inner_text("#new-secret")  # the once-only warning
    await page.click("#copy-secret")
    await page.wait_for_selector("#status:has-text('copied')")
    assert await page.evaluate("navigator.clipboard.readText()") == secret
    await page.screenshot(path=screenshot_path("key-created", site), full_page=True)

    row = page.locator("#keys-body tr", has_text="CI key")
    await row.wait_for()
    key_id = secret.split("_")[2]
    assert await row.get_attribute("data-key-id") == key_id
    assert f"pryv_test_{key_id}_…{secret[-4:]}" in await row.inner_text()
    [record] = await account_keys(site, wallet)
    assert (record.name, record.env, record.models, record.rpm) == (
        "CI key",
        "test",
        ("pryv-echo",),
        60,
    )
    assert record.monthly_budget_micros == 25_500_000 and record.expires_at is not None

    await page.click("#secret-done")
    assert secret not in await page.content()
    await page.reload()
    await page.wait_for_selector("#keys-body tr[data-key-id]")
    assert secret not in await page.content()
    assert secret[-4:] in await page.inner_text("#keys-body")
    await page.screenshot(path=screenshot_path("keys-list", site), full_page=True)

    # The key works against the public API.
    async with httpx.AsyncClient(base_url=site.api_url) as api:
        models = await api.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert models.status_code == 200 and models.json()["data"][0]["id"] == "pryv-echo"


async def test_revoke_key_with_confirmation(page: Any, site: Site, wallet: BrowserWallet) -> None:
    await sign_in(page)
    secret = await create_key(page, "Doomed")
    await page.click("#secret-done")
    key_id = secret.split("_")[2]
    revoke = f"button[data-revoke='{key_id}']"

    # Escape cancels the dialog: nothing is signed, the key stays active.
    signed = len(wallet.signed)
    await page.click(revoke)
    await page.wait_for_selector("#revoke-dialog[open]")
    assert await page.evaluate("document.activeElement.id") == "revoke-cancel"
    await page.screenshot(path=screenshot_path("revoke-dialog", site))
    await page.keyboard.press("Escape")
    await page.wait_for_selector("#revoke-dialog:not([open])", state="attached")
    assert len(wallet.signed) == signed

    await page.click(revoke)
    await page.click("#revoke-confirm")
    row = page.locator(f"#keys-body tr[data-key-id='{key_id}']")
    await row.locator(".badge.revoked").wait_for()
    await page.wait_for_selector("#status:has-text('revoked')")
    assert wallet.signed[-1].startswith(f"Pryv API key mgmt | action=revoke | keyId={key_id} |")
    [record] = await account_keys(site, wallet)
    assert record.status == "revoked"
    await page.screenshot(path=screenshot_path("key-revoked", site), full_page=True)
    async with httpx.AsyncClient(base_url=site.api_url) as api:
        refused = await api.get("/v1/models", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401


async def test_credits_show_the_balance_after_a_grant(
    page: Any, site: Site, wallet: BrowserWallet
) -> None:
    await sign_in(page)
    await site.grant(wallet.account.address, "12.5", ref="live-1")
    await site.grant(wallet.account.address, "3", env="test", ref="test-1")
    await goto(page, "credits", "#balances")
    assert await page.inner_text("[data-testid=available-live]") == "$12.50"
    assert await page.inner_text("[data-testid=available-test]") == "$3.00"
    # No Stripe on this deployment: said plainly, and the buy buttons are off.
    notice = await page.inner_text("#billing-unavailable")
    assert "billing_not_configured" in notice and "pryv credits grant" in notice
    assert await page.is_disabled("#custom-buy")
    await page.screenshot(path=screenshot_path("credits", site), full_page=True)

    await site.grant(wallet.account.address, "1", ref="live-2")
    await page.click("#refresh-balance")
    await page.wait_for_selector("[data-testid=available-live]:has-text('$13.50')")


async def test_usage_ledger_pages_and_chart(page: Any, site: Site, wallet: BrowserWallet) -> None:
    await sign_in(page)
    for i in range(11):
        await site.grant(wallet.account.address, f"{i + 1}", env="test", ref=f"g{i}")
    secret = await create_key(page, "usage")
    async with httpx.AsyncClient(base_url=site.api_url, timeout=60) as api:
        answer = await api.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {secret}", "X-Request-Id": "dash-usage-1"},
            json={
                "model": "pryv-echo",
                "messages": [{"role": "user", "content": "hello"}],
                "skip_pii_redaction": True,  # usage is the point here, not the PII engine
            },
        )
    assert answer.status_code == 200, answer.text
    for _ in range(200):  # settlement is recorded just after the answer
        await site.settled()
        account = str(ids.account_id(wallet.account.address.lower()))
        entries = await ledger.ledger_page(site.platform.read_store, account, before=None, limit=20)
        if any(e["type"] == "usage" for e in entries):
            break
        await asyncio.sleep(0.05)

    await goto(page, "usage", "#ledger-body tr[data-entry]")
    first = await page.locator("#ledger-body tr").all_inner_texts()
    assert len(first) == 10
    assert "usage" in first[0] and "pryv-echo" in first[0]
    assert "\u2212$" in first[0]  # debits show a real minus sign
    assert await page.is_disabled("#ledger-newer")
    bars = page.locator("#spend-chart rect.bar-test")
    assert await bars.count() == 1
    today = page.locator("#spend-table tbody tr").last  # in a collapsed <details>
    cells = await today.locator("td").all_text_contents()
    assert cells[2].startswith("$0.0000") and cells[3] == "1"  # test spend, test requests
    assert cells[2] in (await page.text_content("#chart-title") or "")
    await page.screenshot(path=screenshot_path("usage", site), full_page=True)

    await page.click("#ledger-older")
    await page.wait_for_selector("#ledger-page:has-text('Page 2')")
    second = await page.locator("#ledger-body tr").all_inner_texts()
    assert len(second) == 2 and not set(second) & set(first)
    assert await page.is_disabled("#ledger-older")
    await page.click("#ledger-newer")
    await page.wait_for_selector("#ledger-page:has-text('Page 1')")
    assert await page.locator("#ledger-body tr").all_inner_texts() == first

    # The breakdown by key and model: the key's one request, and the same rows as CSV.
    row = await page.inner_text("#usage-body tr")
    assert "usage" in row and "pryv-echo" in row and "\t1\t" in f"\t{row}\t".replace("\n", "\t")
    href = await page.get_attribute("#usage-csv", "href")
    assert href is not None and "format=csv" in href
    csv_text = await page.evaluate("(href) => fetch(href).then((r) => r.text())", href)
    header, line = csv_text.strip().splitlines()
    assert header == "date,env,key_id,key_name,model,requests,tokens_in,tokens_out,spend_usd"
    assert ",test," in line and ",usage,pryv-echo,1," in line
    await page.fill("#usage-model", "no-such-model")
    await page.click("#usage-apply")
    await page.wait_for_selector("#usage-body td.muted")


async def test_models_page_lists_the_catalog(page: Any, site: Site) -> None:
    await goto(page, "models", "#models-table")  # public: no sign-in needed
    row = await page.inner_text("#models-table tr[data-model='pryv-echo']")
    assert "$1.00" in row and "$2.00" in row and "16,384" in row and "test keys only" in row
    await page.screenshot(path=screenshot_path("models", site), full_page=True)


async def test_settings_round_trip(page: Any, site: Site, wallet: BrowserWallet) -> None:
    await sign_in(page)
    await goto(page, "settings", "#settings-form")
    assert await page.is_checked("#mode-redact") and await page.is_checked("#entities-default")
    await page.check("#mode-pseudonymize")
    await page.uncheck("#entities-default")
    await page.uncheck("#entity-PHONE_NUMBER")
    await page.check("#entity-ORGANIZATION")
    await page.fill("#text-threshold", "0.5")
    await page.select_option("#face-blur", "light")
    await page.fill("#pdf-pages", "3")
    await page.check("#consent-analytics")
    await page.click("#save-settings")
    await page.wait_for_selector("#status:has-text('Settings saved')")
    assert wallet.signed[-1].startswith("Pryv API key mgmt | action=settings | keyId= |")

    await site.settled()
    account = str(ids.account_id(wallet.account.address.lower()))
    stored = await settings_projection.read_settings(site.platform.read_store, account)
    privacy = stored["privacy"]
    assert privacy["mode"] == "pseudonymize"
    assert "ORGANIZATION" in privacy["piiEntities"] and "PHONE_NUMBER" not in privacy["piiEntities"]
    assert privacy["piiConfig"]["text"]["threshold"] == 0.5
    assert privacy["piiConfig"]["image"]["faces"]["blur"] == "light"
    assert privacy["piiConfig"]["pdf"]["pages"] == 3
    assert stored["consent"] == {"analytics": True, "marketing": False}

    await page.reload()
    await page.wait_for_selector("#settings-form")
    assert await page.is_checked("#mode-pseudonymize")
    assert not await page.is_checked("#entities-default")
    assert not await page.is_checked("#entity-PHONE_NUMBER")
    assert await page.is_checked("#entity-ORGANIZATION")
    assert await page.input_value("#text-threshold") == "0.5"
    assert await page.input_value("#face-blur") == "light"
    assert await page.is_checked("#consent-analytics")
    await page.screenshot(path=screenshot_path("settings", site), full_page=True)


async def test_docs_show_this_deployments_base_url(page: Any, site: Site) -> None:
    await goto(page, "docs", "#endpoints-table")
    assert await page.inner_text("#api-base-url") == site.api_url
    curl = await page.inner_text("#qs-curl")
    assert f"curl {site.api_url}/v1/chat/completions" in curl and '"model": "pryv-echo"' in curl
    endpoints = await page.inner_text("#endpoints-table")
    assert f"{site.api_url}/v1/chat/completions" in endpoints
    assert f"{site.api_url}/api/v1/keys" in endpoints and "action=revoke" in endpoints
    errors = await page.inner_text("#errors-table")
    for code in ("insufficient_credits", "rate_limit_exceeded_rpm", "SIGNATURE_INVALID"):
        assert code in errors
    assert "EMAIL_ADDRESS" in await page.inner_text("#pii-types")
    await page.screenshot(path=screenshot_path("docs", site), full_page=True)


async def test_mobile_width(browser: Any, site: Site, wallet: BrowserWallet) -> None:
    context = await browser.new_context(viewport={"width": 375, "height": 812})
    page = await context.new_page()
    await wallet.install(page)
    await page.goto(site.dashboard_url)
    await page.wait_for_selector("body[data-ready=true]")
    await sign_in(page)
    await site.grant(wallet.account.address, "1", env="test", ref="mobile-1")
    await create_key(page, "Phone key")
    await page.click("#secret-done")
    for route, ready in (
        ("keys", "#keys-body tr[data-key-id]"),
        ("usage", "#ledger-body tr[data-entry]"),
    ):
        await goto(page, route, ready)
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{route} scrolls sideways at 375 px"
        # Every cell of the first row is inside the viewport, none clipped (element boxes).
        cells = page.locator(f"{ready} >> nth=0").locator("td")
        for index in range(await cells.count()):
            box = await cells.nth(index).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375.5
            clipped = await cells.nth(index).evaluate("(c) => c.scrollWidth - c.clientWidth")
            assert clipped <= 1, (route, index)
        await page.screenshot(path=screenshot_path(f"mobile-{route}", site), full_page=True)
    # The test badge's text meets WCAG AA for small text (4.5:1) on its panel.
    await goto(page, "keys", "#keys-body .badge.test")
    ratio = await page.evaluate(CONTRAST_JS, "#keys-body .badge.test")
    assert ratio >= 4.5, ratio
    await context.close()


CONTRAST_JS = """(selector) => {
  const parse = (c) => c.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const badge = document.querySelector(selector);
  let node = badge, bg = "rgba(0, 0, 0, 0)";
  while (node && (bg === "rgba(0, 0, 0, 0)" || bg === "transparent")) {
    bg = getComputedStyle(node).backgroundColor;
    node = node.parentElement;
  }
  const a = lum(parse(getComputedStyle(badge).color)), b = lum(parse(bg));
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


@pytest.mark.parametrize("width", [1280, 390])
async def test_every_models_column_is_visible(browser: Any, site: Site, width: int) -> None:
    """The Models table's prices, context, max output and access sit inside the viewport at a
    desktop and a phone width (element boxes, not text): nothing is cut off or off-screen."""
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    await page.goto(site.dashboard_url)
    await page.wait_for_selector("body[data-ready=true]")
    await goto(page, "models", "#models-table tr[data-model='pryv-echo']")
    row = page.locator("#models-table tr[data-model='pryv-echo']")
    cells = row.locator("th, td")
    assert await cells.count() == 6
    for index in range(6):
        cell = cells.nth(index)
        box = await cell.bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0, index
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (index, box)
        # the cell's content fits in the cell (no clipped text)
        clipped = await cell.evaluate("(c) => c.scrollWidth - c.clientWidth")
        assert clipped <= 1, (index, clipped)
    text = await row.inner_text()
    for value in ("$1.00", "$2.00", "16,384", "1,024", "test keys only"):
        assert value in text
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await page.screenshot(path=screenshot_path(f"models-{width}", site), full_page=True)
    await context.close()


async def test_edit_and_roll_a_key(page: Any, site: Site, wallet: BrowserWallet) -> None:
    """Edit changes the key's terms (a wallet-signed PATCH); Roll shows a new secret once, and
    with "Now" the old secret is refused at once while the new one works."""
    await sign_in(page)
    await site.grant(wallet.account.address, "2", env="test", ref="roll-1")
    old_secret = await create_key(page, "Rolling")
    await page.click("#secret-done")
    key_id = old_secret.split("_")[2]

    await page.click(f"button[data-edit='{key_id}']")
    await page.wait_for_selector("#edit-dialog[open]")
    assert await page.input_value("#edit-name") == "Rolling"
    await page.fill("#edit-name", "Rolled")
    await page.fill("#edit-rpm", "7")
    await page.click("#edit-dialog-confirm")
    await page.wait_for_selector(f"tr[data-key-id='{key_id}']:has-text('Rolled')")
    [record] = [k for k in await account_keys(site, wallet) if k.key_id == key_id]
    assert (record.name, record.rpm) == ("Rolled", 7)
    assert any("action=update" in m and f"keyId={key_id}" in m for m in wallet.signed)

    await page.click(f"button[data-roll='{key_id}']")
    await page.wait_for_selector("#roll-dialog[open]")
    await page.select_option("#roll-grace", "0")
    await page.screenshot(path=screenshot_path("roll-dialog", site))
    await page.click("#roll-dialog-confirm")
    await page.wait_for_selector("#new-secret")
    new_secret = await page.inner_text("[data-testid=secret]")
    assert new_secret != old_secret and new_secret.split("_")[2] == key_id
    ask = {
        "model": "pryv-echo",
        "messages": [{"role": "user", "content": "hi"}],
        "skip_pii_redaction": True,
    }
    async with httpx.AsyncClient(base_url=site.api_url, timeout=60) as api:
        old = await api.post(
            "/v1/chat/completions", json=ask, headers={"Authorization": f"Bearer {old_secret}"}
        )
        new = await api.post(
            "/v1/chat/completions", json=ask, headers={"Authorization": f"Bearer {new_secret}"}
        )
    assert (old.status_code, new.status_code) == (401, 200), (old.text, new.text)


async def test_activity_log_names_each_action_and_who_allowed_it(
    page: Any, site: Site, wallet: BrowserWallet
) -> None:
    await sign_in(page)
    await site.grant(wallet.account.address, "3", env="test", ref="act-1")
    secret = await create_key(page, "Audited")
    await page.click("#secret-done")
    key_id = secret.split("_")[2]
    await page.click(f"button[data-revoke='{key_id}']")
    await page.click("#revoke-confirm")
    await page.wait_for_selector(f"tr[data-key-id='{key_id}']:has-text('revoked')")
    await site.settled()
    await goto(page, "activity", "#activity-body tr[data-activity='key.revoked']")
    rows = await page.locator("#activity-body tr").all_inner_texts()
    actions = await page.locator("#activity-body tr").evaluate_all(
        "(rows) => rows.map((r) => r.dataset.activity)"
    )
    assert actions[:3] == ["key.revoked", "key.created", "credits.granted"], actions
    assert key_id in rows[0] and "wallet" in rows[0]
    assert "Audited" in rows[1] and "wallet" in rows[1]
    assert "test credit" in rows[2] and "operator 0x" in rows[2]
    await page.screenshot(path=screenshot_path("activity", site), full_page=True)


async def test_docs_examples_run_as_printed(page: Any, site: Site, wallet: BrowserWallet) -> None:
    """The Docs page has a table of contents, a Copy button on every example, and its Python
    examples (plain, streaming, 402/429 handling) run exactly as printed against this server."""
    import os
    import subprocess
    import sys

    await sign_in(page)
    await site.grant(wallet.account.address, "2", env="test", ref="docs-1")
    secret = await create_key(page, "docs")
    await page.click("#secret-done")
    await goto(page, "docs", "#endpoints-table")
    toc = await page.locator("#docs-toc a").all_inner_texts()
    assert toc[:3] == ["Quickstart", "Streaming", "Credits, 402 and 429"], toc
    await page.click("#docs-toc a[data-target='err-title']")
    assert await page.evaluate("document.activeElement.id") == "err-title"
    blocks = await page.locator("pre[id]").count()
    assert await page.locator("button[data-copy]").count() == blocks
    await page.click("button[data-copy='qs-python']")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == await page.inner_text("#qs-python")
    env = {**os.environ, "PRYV_API_KEY": secret}

    async def run(code: str) -> subprocess.CompletedProcess[str]:
        # In a thread: the server under test answers from this event loop.
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    for example in ("qs-python", "stream-python", "billing-python"):
        code = await page.inner_text(f"#{example}")
        assert code.isascii(), example  # nothing a terminal or an editor would mangle
        ran = await run(code)
        assert ran.returncode == 0 and ran.stdout.strip(), (example, ran.stderr[-2000:])
        if example == "stream-python":
            assert " in, " in ran.stdout  # the usage chunk


async def test_low_balance_banner_follows_the_alert_threshold(
    page: Any, site: Site, wallet: BrowserWallet
) -> None:
    await sign_in(page)
    await site.grant(wallet.account.address, "3", env="live", ref="low-1")
    await goto(page, "settings", "#settings-form")
    await page.fill("#low-balance-usd", "5")
    await page.click("#save-settings")
    await page.wait_for_selector("#status:has-text('Settings saved')")
    await goto(page, "keys", "#create-key-form")
    await page.wait_for_selector("#low-balance:not([hidden])")
    text = await page.inner_text("#low-balance")
    assert "$3.00" in text and "$5.00" in text
    assert await page.get_attribute("#low-balance a", "href") == "#/credits"
    await goto(page, "settings", "#settings-form")
    assert await page.input_value("#low-balance-usd") == "5"
    await page.fill("#alert-webhook-url", "https://hooks.example.invalid/pryv")
    await page.click("#save-settings")
    await page.wait_for_selector("#status:has-text('Settings saved')")
    await goto(page, "keys", "#create-key-form")
    await goto(page, "settings", "#alert-webhook-secret")
    assert (await page.inner_text("#alert-webhook-secret")).startswith("whsec_")
    assert await page.input_value("#alert-webhook-url") == "https://hooks.example.invalid/pryv"
    await page.fill("#alert-webhook-url", "")
    await page.fill("#low-balance-usd", "")
    await page.click("#save-settings")
    await page.wait_for_selector("#status:has-text('Settings saved')")
    await goto(page, "credits", "[data-testid=available-live]")
    await page.wait_for_selector("#low-balance[hidden]", state="attached")


async def test_playground_previews_what_the_upstream_receives_and_answers(
    page: Any, site: Site, wallet: BrowserWallet
) -> None:
    """The playground creates a one-day key with the wallet's signature, shows the prompt as
    `/v1/pii/preview` redacts it (the same text), then the answer and its cost."""
    await sign_in(page)
    await site.grant(wallet.account.address, "2", env="test", ref="pg-1")
    await goto(page, "playground", "#pg-start")
    assert await page.is_disabled("#pg-send")
    await page.click("#pg-start")
    await page.wait_for_selector("#pg-send:not([disabled])")
    assert any("action=create" in m for m in wallet.signed)
    [key] = [k for k in await account_keys(site, wallet) if k.name == "Playground"]
    assert key.expires_at is not None and key.env == "test"
    prompt = "Write to jane.doe@example.com about the invoice."
    await page.fill("#pg-prompt", prompt)
    await page.click("#pg-preview")
    await page.wait_for_selector("#pg-sent code:has-text('EMAIL_ADDRESS')")
    shown = await page.inner_text("#pg-sent")

    direct_key = await asyncio.to_thread(
        site.platform.app.create_key,
        wallet=wallet.account.address.lower(),
        name="direct",
        env="test",
        models=[],
        rpm=None,
        tpm=None,
        monthly_budget_micros=None,
        expires_at=None,
        pepper=site.platform.settings.key_pepper,
        authorization=OPERATOR,
    )
    await site.settled()  # the key index has the new key
    async with httpx.AsyncClient(base_url=site.api_url, timeout=60) as api:
        direct = await api.post(
            "/v1/pii/preview",
            json={"text": prompt},
            headers={"Authorization": f"Bearer {direct_key.issued.token}"},
        )
    assert direct.status_code == 200, direct.text
    assert shown == direct.json()["text"]["redacted"]

    await page.click("#pg-send")
    await page.wait_for_selector("#pg-cost:has-text('tokens in')")
    answer = await page.inner_text("#pg-answer")
    assert "invoice" in answer and "jane.doe@example.com" not in answer  # echo of the redacted text
    await page.screenshot(path=screenshot_path("playground", site), full_page=True)
