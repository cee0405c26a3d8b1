"""The consent page: the wallet owner signs in with Ethereum (EIP-4361, the dashboard's own
checks and single-use nonces) and chooses the connection's scopes, env and limits; Pryv then
creates the connection and sends the client its authorization code.

`GET /mcp/consent?request=…` is the page (or, asked for JSON, what it needs to build the
sign-in message); `POST /mcp/consent` takes the signed message and the choices and answers
`{"redirectTo": "<redirect_uri>?code=…&state=…&iss=…"}`.
"""

from __future__ import annotations

import asyncio
import html
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

from eth_utils.address import to_checksum_address
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from mcp.server.auth.provider import construct_redirect_uri
from pydantic import BaseModel, ConfigDict, Field

from bootstrap.platform import Platform
from domain.errors import PryvError
from domain.evidence import siwe_signed
from domain.siwe import LoginPolicy, SiweCode, SiweError, parse_siwe_message
from domain.wallet_messages import WalletAuthError
from gateway import accounts
from gateway.sign_in import LoginNonces, nonce_secret, verify_login
from infra.wallet_signatures import normalize_address
from mcp_server.authorization import (
    READ_SCOPE,
    SCOPE_HELP,
    PendingConsent,
    PryvAuthorizationProvider,
)


def statement_for(request_id: str) -> str:
    """The sign-in message's statement, naming the one authorization request it answers: a
    signature made for one client's consent cannot be spent on another's."""
    return f"Connect an MCP client to your Pryv account. Request: {request_id}"


router = APIRouter(prefix="/mcp", tags=["mcp"], include_in_schema=False)


class ConsentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    request: str = Field(min_length=1, max_length=100)
    message: str = Field(min_length=1, max_length=4096)
    signature: str = Field(min_length=1, max_length=200)
    env: Literal["live", "test"] = "live"
    scopes: list[str] | None = Field(default=None, max_length=8)
    monthly_budget_usd: Decimal | None = Field(
        default=None, alias="monthlyBudgetUsd", gt=0, le=1_000_000, decimal_places=6
    )
    rpm: int | None = Field(default=None, ge=1, le=1_000_000)


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def _provider(request: Request) -> PryvAuthorizationProvider:
    provider: PryvAuthorizationProvider = request.app.state.mcp.provider
    return provider


def _nonces(request: Request) -> LoginNonces:
    nonces: LoginNonces | None = getattr(request.app.state, "mcp_nonces", None)
    if nonces is None:
        nonces = LoginNonces(nonce_secret(platform_of(request).settings.key_pepper))
        request.app.state.mcp_nonces = nonces
    return nonces


def _policy(request: Request) -> LoginPolicy:
    """Messages must name the host the consent page is served at (the MCP origin)."""
    return LoginPolicy(domain=urlsplit(request.app.state.mcp.base).netloc)


async def _pending(request: Request, request_id: str) -> PendingConsent:
    pending = await _provider(request).pending(request_id)
    if pending is None:
        raise PryvError(
            "this authorization request expired or was already answered; start again from "
            "your MCP client",
            code="consent_expired",
        )
    return pending


@router.get("/consent", response_model=None)
async def consent_page(request: Request, request_id: str = "") -> Response:
    pending = await _pending(request, request.query_params.get("request", request_id))
    issued = _nonces(request).issue(datetime.now(UTC))
    policy = _policy(request)
    facts: dict[str, Any] = {
        "object": "mcp.consent",
        "request": pending.id,
        "client": pending.client_name,
        "redirectUri": pending.redirect_uri,
        "scopes": {scope: SCOPE_HELP[scope] for scope in pending.scopes},
        "siwe": {
            "domain": policy.domain,
            "uri": request.app.state.mcp.base + "/mcp/consent",
            "statement": statement_for(pending.id),
            "version": "1",
            "chainId": min(policy.chain_ids),
            "nonce": issued.nonce,
            "expiresAt": issued.expires_at.isoformat().replace("+00:00", "Z"),
        },
    }
    address = request.query_params.get("address")
    if address:  # the page asks: the message must carry the EIP-55 form
        try:
            facts["siwe"]["address"] = to_checksum_address(normalize_address(address))
        except WalletAuthError as exc:
            raise PryvError(exc.message, code="invalid_params", param="address") from exc
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse(facts)
    return HTMLResponse(_page(facts))


@router.post("/consent")
async def consent(request: Request, body: ConsentRequest) -> dict[str, Any]:
    """The signed consent: create the connection, answer with the client's redirect."""
    pending = await _pending(request, body.request)
    platform = platform_of(request)
    scopes = sorted({*(body.scopes or pending.scopes), READ_SCOPE})  # /mcp itself needs read
    extra = sorted(set(scopes) - set(pending.scopes))
    if extra:
        raise PryvError(f"not requested by the client: {' '.join(extra)}", code="invalid_scope")
    if parse_siwe_message(body.message).statement != statement_for(pending.id):
        raise SiweError(SiweCode.MESSAGE_INVALID, "the message is for another authorization")
    wallet = await verify_login(
        body.message,
        body.signature,
        policy=_policy(request),
        nonces=_nonces(request),
        store=platform.nonces,
        now=datetime.now(UTC),
    )  # a SiweError is a PryvError: 403 with its code
    signed = siwe_signed(wallet, body.message, body.signature)  # recorded in both events
    claimed = await _provider(request).claim(pending.id)
    if claimed is None:
        raise PryvError("this authorization request was already answered", code="consent_expired")
    connection = await accounts.create_key(
        platform,
        wallet,
        name=f"MCP: {claimed.client_name}"[:100],
        env=body.env,
        models=[],
        rpm=body.rpm,
        tpm=None,
        monthly_budget_usd=body.monthly_budget_usd,
        expires_at=None,
        expires_in_days=None,
        authorization=signed,
    )
    await asyncio.to_thread(
        platform.app.authorize_connection,
        wallet=wallet,
        key_id=str(connection["id"]),
        client_id=claimed.client_id,
        client_name=claimed.client_name,
        scopes=scopes,
        evidence=signed,
    )
    code = await _provider(request).grant(claimed, str(connection["id"]), scopes)
    issuer: str = request.app.state.mcp.issuer
    return {
        "object": "mcp.consent_result",
        "connectionId": connection["id"],
        "redirectTo": construct_redirect_uri(
            pending.redirect_uri, code=code, state=pending.state, iss=issuer
        ),
    }


def _page(facts: dict[str, Any]) -> str:
    """A small page that builds the EIP-4361 message and asks the browser wallet to sign."""
    client = html.escape(str(facts["client"]))
    scopes = "".join(
        f'<li><label><input type="checkbox" name="scope" value="{html.escape(s)}" checked> '
        f"<b>{html.escape(s)}</b>: {html.escape(h)}</label></li>"
        for s, h in facts["scopes"].items()
    )
    data = html.escape(json.dumps(facts), quote=True)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Connect {client} · Pryv</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin:.3rem 0}}button{{font-size:1rem;padding:.5rem 1rem}}</style></head>
<body><main id="consent" data-facts="{data}">
<h1>Connect {client}</h1>
<p>{client} asks to use your Pryv account through MCP. It will act as a connection with its
own limits, listed with your keys, and you can revoke it there at any time.</p>
<ul>{scopes}</ul>
<label>Environment <select name="env"><option>live</option><option>test</option></select></label>
<label>Monthly budget (USD, optional) <input name="budget" inputmode="decimal"></label>
<label>Requests per minute (optional) <input name="rpm" inputmode="numeric"></label>
<p><button id="sign">Sign in with your wallet and allow</button></p>
<p id="status" role="status"></p></main>
<script>
const root = document.getElementById("consent");
const facts = JSON.parse(root.dataset.facts);
document.getElementById("sign").onclick = async () => {{
  const status = document.getElementById("status");
  try {{
    const [account] = await window.ethereum.request({{method: "eth_requestAccounts"}});
    const ask = await fetch(`/mcp/consent?request=${{facts.request}}&address=${{account}}`,
      {{headers: {{accept: "application/json"}}}});
    const s = (await ask.json()).siwe, address = s.address;
    const now = new Date(), end = new Date(now.getTime() + 5 * 60000);
    const message = `${{s.domain}} wants you to sign in with your Ethereum account:\\n` +
      `${{address}}\\n\\n${{s.statement}}\\n\\nURI: ${{s.uri}}\\nVersion: ${{s.version}}\\n` +
      `Chain ID: ${{s.chainId}}\\nNonce: ${{s.nonce}}\\nIssued At: ${{now.toISOString()}}\\n` +
      `Expiration Time: ${{end.toISOString()}}`;
    // personal_sign takes the UTF-8 bytes as hex, as the dashboard sends them.
    const hex = "0x" + Array.from(new TextEncoder().encode(message),
      (b) => b.toString(16).padStart(2, "0")).join("");
    const signature = await window.ethereum.request(
      {{method: "personal_sign", params: [hex, address]}});
    const form = (n) => root.querySelector(`[name=${{n}}]`);
    const body = {{request: facts.request, message, signature, env: form("env").value,
      scopes: [...root.querySelectorAll("[name=scope]:checked")].map((e) => e.value)}};
    if (form("budget").value) body.monthlyBudgetUsd = form("budget").value;
    if (form("rpm").value) body.rpm = Number(form("rpm").value);
    const answer = await fetch("/mcp/consent", {{method: "POST",
      headers: {{"content-type": "application/json"}}, body: JSON.stringify(body)}});
    const doc = await answer.json();
    if (!answer.ok) throw new Error(doc.error.message);
    window.location.assign(doc.redirectTo);
  }} catch (error) {{ status.textContent = String(error.message || error); }}
}};
</script></body></html>"""
