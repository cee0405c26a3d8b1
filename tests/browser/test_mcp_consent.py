"""The MCP consent page in a real browser: the page builds the sign-in message, the browser
wallet signs it, the page sends the person back to the client with a code that redeems."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.browser.conftest import require_chromium
from tests.browser.harness import BrowserWallet
from tests.integration.test_mcp import (  # noqa: F401
    REDIRECT,
    McpGateway,
    authorize_params,
    gateway,
    pkce,
    register_client,
)
from tests.wallets import SigningWallet


async def test_consent_page_signs_in_and_sends_the_code_back(
    browser: Any,
    gateway: McpGateway,  # noqa: F811
) -> None:
    require_chromium()
    wallet = BrowserWallet(SigningWallet.create())
    verifier, challenge = pkce()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        client_id = await register_client(http, "Browser client")
        sent = await http.get(
            "/authorize", params=authorize_params(client_id, challenge, state="xyz")
        )
        consent_url = sent.headers["location"]

        context = await browser.new_context()
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await wallet.install(page)
        # The client's loopback listener, as a native app would run it.
        await page.route(f"{REDIRECT}**", lambda route: route.fulfill(body="signed in"))
        await page.goto(consent_url)
        assert "Browser client" in await page.inner_text("h1")
        await page.select_option("select[name=env]", "test")
        await page.fill("input[name=budget]", "2")
        await page.click("#sign")
        await page.wait_for_url(f"{REDIRECT}**", timeout=60_000)
        query = parse_qs(urlsplit(page.url).query)
        await context.close()
        assert not errors, errors
        assert query["state"] == ["xyz"] and query["iss"] == [gateway.door.issuer]  # type: ignore[union-attr]
        assert (
            wallet.signed and "wants you to sign in with your Ethereum account" in wallet.signed[0]
        )
        token = await http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": REDIRECT,
                "client_id": client_id,
                "code_verifier": verifier,
            },
        )
        assert token.status_code == 200, token.text
