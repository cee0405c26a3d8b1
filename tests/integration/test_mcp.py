"""The remote MCP door end to end: the official `mcp` client SDK discovers Pryv's authorization
server, registers, is sent to the consent page, a wallet signs in there (programmatically), the
client redeems the code with PKCE, lists the tools and calls them; the calls are metered like
API calls. And the refusals the OAuth and MCP specs ask for, over raw HTTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import json
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from api.app import create_app
from bootstrap.platform import Platform, open_platform
from domain import ids, topics
from domain.api_keys import parse_api_key
from domain.money import usd_to_micros
from domain.siwe import SiweMessage, format_siwe_message
from domain.tokens import estimate_text_tokens
from infra.oauth_state import digest
from infra.settings import Settings
from infra.wallet_signatures import sign_message
from mcp_server.door import McpDoor
from tests.evidence import OPERATOR
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, write_catalog
from tests.tls import self_signed
from tests.wallets import SigningWallet
from workers.embedded import running_workers

REDIRECT = "http://127.0.0.1:53682/callback"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclasses.dataclass
class McpGateway(Gateway):
    mcp_url: str = ""
    door: McpDoor | None = None

    async def planted_token(self, **grant: Any) -> str:
        """An access token stored as the authorization server stores them, for grants the
        consent page never issues (other resources, missing scopes)."""
        assert self.door is not None
        token = f"pryv_mcp_at_{secrets.token_urlsafe(16)}"
        doc = {
            "client_id": "planted",
            "scopes": ["pryv:read"],
            "resource": self.mcp_url,
            "subject": "nokey",
            "expires_at": int(time.time()) + 60,
            **grant,
        }
        await self.door.provider.state.put("access", digest(token), doc, 60)
        return token


@pytest.fixture
async def gateway(platform_settings: Settings, upstream: FakeUpstream) -> AsyncIterator[McpGateway]:
    """The API (with its MCP door) served on a known port, so its public URL is real."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    platform_settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings = dataclasses.replace(
        platform_settings,
        public_url=base,
        models_file=write_catalog(platform_settings.data_dir, upstream),
    )
    platform = await open_platform(settings)
    app = create_app(platform)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    stop = asyncio.Event()

    async def session_manager() -> None:  # entered and left in one task (anyio's rule)
        async with app.state.mcp.server.session_manager.run():
            await stop.wait()

    try:
        async with running_workers(platform):
            manager = asyncio.create_task(session_manager())
            task = asyncio.create_task(server.serve())
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
            try:
                yield McpGateway(base, platform, mcp_url=f"{base}/mcp", door=app.state.mcp)
            finally:
                server.should_exit = True
                await task
                stop.set()
                await manager
    finally:
        await platform.close()


class MemoryTokens:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def siwe_text(wallet: SigningWallet, facts: dict[str, Any]) -> str:
    siwe = facts["siwe"]
    now = datetime.now(UTC)
    return format_siwe_message(
        SiweMessage(
            scheme=None,
            domain=siwe["domain"],
            address=wallet.address,
            statement=siwe["statement"],
            uri=siwe["uri"],
            version="1",
            chain_id=siwe["chainId"],
            nonce=siwe["nonce"],
            issued_at=now,
            expiration_time=now + timedelta(minutes=5),
        )
    )


async def consent(
    base: str, authorize_url: str, wallet: SigningWallet, **choices: Any
) -> dict[str, Any]:
    """What a person does in the browser: follow /authorize to the consent page, sign in
    with the wallet, allow. Returns the consent answer (redirectTo, connectionId)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        sent = await http.get(authorize_url)
        assert sent.status_code == 302, sent.text
        page = urlsplit(sent.headers["location"])
        assert page.path == "/mcp/consent"
        request_id = parse_qs(page.query)["request"][0]
        html_page = await http.get(page.path, params={"request": request_id})
        assert html_page.status_code == 200 and "Sign in with your wallet" in html_page.text
        facts = (
            await http.get(
                page.path,
                params={"request": request_id},
                headers={"accept": "application/json"},
            )
        ).json()
        text = siwe_text(wallet, facts)
        _address, signature = sign_message(wallet.private_key, text)
        answer = await http.post(
            "/mcp/consent",
            json={"request": request_id, "message": text, "signature": signature, **choices},
        )
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


@contextlib.asynccontextmanager
async def mcp_client(
    gateway: McpGateway,
    wallet: SigningWallet,
    tokens: MemoryTokens | None = None,
    mode: str = "auto",
    **choices: Any,
) -> AsyncIterator[tuple[Client, MemoryTokens, list[dict[str, Any]]]]:
    """The SDK client, authorizing through the whole OAuth flow on first use."""
    tokens = tokens or MemoryTokens()
    answers: list[dict[str, Any]] = []

    async def redirect_handler(url: str) -> None:
        answers.append(await consent(gateway.url, url, wallet, **choices))

    async def callback_handler() -> AuthorizationCodeResult:
        query = parse_qs(urlsplit(answers[-1]["redirectTo"]).query)
        return AuthorizationCodeResult(
            code=query["code"][0], state=query["state"][0], iss=query.get("iss", [None])[0]
        )

    auth = OAuthClientProvider(
        server_url=gateway.mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="Pryv test client",
            redirect_uris=[REDIRECT],  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=tokens,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    async with (
        httpx2.AsyncClient(auth=auth, timeout=60) as http,
        Client(
            streamable_http_client(gateway.mcp_url, http_client=http),
            mode=mode,  # type: ignore[arg-type]
        ) as client,
    ):
        yield client, tokens, answers


async def fund(gateway: Gateway, wallet: SigningWallet, usd: str, env: str = "live") -> None:
    await asyncio.to_thread(
        gateway.platform.app.grant_credits,
        authorization=OPERATOR,
        wallet=wallet.address.lower(),
        env=env,
        amount_micros=usd_to_micros(usd),
        reason="test",
        granted_by="test",
        grant_ref=f"grant-{secrets.token_hex(4)}",
    )
    await gateway.settled()


async def placed_holds(platform: Platform, key_id: str) -> int:
    log = await asyncio.to_thread(platform.app.read_log, 0, 1_000_000)
    return sum(e.topic == topics.HOLD_PLACED and e.data["key_id"] == key_id for e in log)


async def settlements_of(
    platform: Platform, key_id: str, count: int, wait: float = 30
) -> list[dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        log = await asyncio.to_thread(platform.app.read_log, 0, 1_000_000)
        found = [
            e.data for e in log if e.topic == topics.HOLD_SETTLED and e.data["key_id"] == key_id
        ]
        if len(found) >= count:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"{len(found)} settlements"
        await asyncio.sleep(0.05)


async def test_oauth_flow_tools_metering_and_revocation(gateway: McpGateway) -> None:
    wallet = SigningWallet.create()
    await fund(gateway, wallet, "5")
    async with mcp_client(gateway, wallet, env="live", monthlyBudgetUsd="1") as (
        client,
        tokens,
        answers,
    ):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert {
            "chat",
            "pii_preview",
            "list_models",
            "get_balance",
            "get_usage",
            "list_keys",
        } <= set(tools)
        assert {"create_checkout", "search", "fetch"} <= set(tools)
        assert tools["get_balance"].annotations and tools["get_balance"].annotations.read_only_hint
        assert "per-token price" in (tools["chat"].description or "")

        answer = await client.call_tool(
            "chat",
            {
                "model": "fake-live",
                "messages": [{"role": "user", "content": "hello, I am jane.doe@example.com"}],
            },
        )
        assert not answer.is_error, answer.content
        result = answer.structured_content or {}
        assert result["model"] == "fake-live" and result["usage"]["prompt_tokens"] > 0
        preview = await client.call_tool("pii_preview", {"text": "mail jane.doe@example.com"})
        assert not preview.is_error, preview.content
        assert (preview.structured_content or {})["counts"] == {"EMAIL_ADDRESS": 1}
        [connection_id] = [a["connectionId"] for a in answers]

        # Metered like API calls: one hold, one settlement each, on the connection's key.
        settled = await settlements_of(gateway.platform, connection_id, 2)
        assert sorted(s["outcome"] for s in settled) == ["ok", "ok"]
        chat_cost = next(s["actual_micros"] for s in settled if s["model"] == "fake-live")
        assert result["cost_usd"] == f"{chat_cost / 1_000_000:.6f}"
        await gateway.settled()
        balance = (await client.call_tool("get_balance", {})).structured_content or {}
        assert balance["walletAddress"] == wallet.address.lower()
        listed = (await client.call_tool("list_keys", {})).structured_content or {}
        assert [k["id"] for k in listed["data"]] == [connection_id]
        assert "key" not in listed["data"][0]  # no secret, ever
        shown = listed["data"][0]
        assert (shown["kind"], shown["client"]) == ("mcp_connection", "Pryv test client")
        assert shown["monthlyBudgetUsd"] == "1.000000" and shown["env"] == "live"
        spent = sum(entry["actual_micros"] for entry in settled)
        assert shown["monthSpendUsd"] == f"{spent / 1_000_000:.6f}"  # its own spend, shown
        log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 1_000_000)
        [grant] = [e.data for e in log if e.topic == topics.ACCOUNT_CONNECTION_AUTHORIZED]
        assert grant["key_id"] == connection_id and "pryv:chat" in grant["scopes"]
        found = (await client.call_tool("search", {"query": "revocation"})).structured_content
        assert found and found["results"]
        page = await client.call_tool("fetch", {"id": found["results"][0]["id"]})
        assert not page.is_error

        # The connection's limits change like a key's: the next call obeys them.
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
            narrowed = await http.patch(
                f"/api/v1/keys/{connection_id}",
                json={**wallet.fields("update", connection_id), "monthlyBudgetUsd": "0.000001"},
            )
        assert narrowed.status_code == 200, narrowed.text
        assert narrowed.json()["kind"] == "mcp_connection"
        capped = await client.call_tool(
            "chat", {"model": "fake-live", "messages": [{"role": "user", "content": "again"}]}
        )
        assert capped.is_error and "budget_exceeded" in str(capped.content[0])

        # Revoked in the key list (as the dashboard does): the next call is refused 401.
        await asyncio.to_thread(
            gateway.platform.app.revoke_key,
            authorization=OPERATOR,
            wallet=wallet.address.lower(),
            key_id=connection_id,
            reason="test",
        )
        await gateway.platform.meter.revoke(connection_id)
        assert tokens.tokens is not None
        async with httpx.AsyncClient(timeout=30) as http:
            after = await http.post(
                gateway.mcp_url,
                json={"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {}},
                headers={
                    "accept": "application/json, text/event-stream",
                    "authorization": f"Bearer {tokens.tokens.access_token}",
                },
            )
        assert after.status_code == 401  # the token outlived its connection: refused at once


async def test_credit_budget_and_scope_are_tool_errors_the_model_can_read(
    gateway: McpGateway,
) -> None:
    chat = {"model": "fake-live", "messages": [{"role": "user", "content": "hi"}]}
    broke = SigningWallet.create()  # no credit at all
    async with mcp_client(gateway, broke, env="live") as (client, _tokens, _answers):
        refused = await client.call_tool("chat", chat)
        assert refused.is_error and "insufficient_credits" in str(refused.content[0])
    frugal = SigningWallet.create()
    await fund(gateway, frugal, "5")
    choices = {"env": "live", "monthlyBudgetUsd": "0.000001"}
    async with mcp_client(gateway, frugal, **choices) as (client, _tokens, _answers):
        refused = await client.call_tool("chat", chat)
        assert refused.is_error and "budget_exceeded" in str(refused.content[0])
    reader = SigningWallet.create()
    await fund(gateway, reader, "5")
    choices = {"env": "live", "scopes": ["pryv:read"]}
    async with mcp_client(gateway, reader, **choices) as (client, _tokens, _answers):
        refused = await client.call_tool("chat", chat)
        assert refused.is_error and "insufficient_scope" in str(refused.content[0])
        assert not (await client.call_tool("get_balance", {})).is_error


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_both_protocol_eras(gateway: McpGateway, mode: str) -> None:
    """The initialize handshake (2025 versions, optional session) and the sessionless
    2026-07-28 protocol both reach the same tools."""
    wallet = SigningWallet.create()
    async with mcp_client(gateway, wallet, mode=mode, env="test") as (client, _t, _a):
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "chat" in names
        answer = await client.call_tool(
            "chat", {"model": "pryv-echo", "messages": [{"role": "user", "content": "ping"}]}
        )
        assert answer.is_error and "insufficient_credits" in str(answer.content[0])


async def test_api_keys_bad_origins_and_unknown_tokens_are_refused(gateway: McpGateway) -> None:
    key = await gateway.funded_key(env="live")
    init = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as http:
        bare = await http.post(gateway.mcp_url, json=init, headers=headers)
        assert bare.status_code == 401
        challenge = bare.headers["www-authenticate"]
        assert challenge.startswith("Bearer") and "resource_metadata=" in challenge
        assert 'scope="pryv:chat pryv:read pryv:billing"' in challenge
        with_key = await http.post(
            gateway.mcp_url, json=init, headers={**headers, "authorization": f"Bearer {key}"}
        )
        assert with_key.status_code == 401  # a pryv_ API key is for /v1 only
        metadata = await http.get(f"{gateway.url}/.well-known/oauth-protected-resource/mcp")
        assert metadata.status_code == 200 and metadata.json()["resource"] == gateway.mcp_url
        root = await http.get(f"{gateway.url}/.well-known/oauth-protected-resource")
        assert root.status_code == 200 and root.json()["resource"] == gateway.mcp_url
        server = (await http.get(f"{gateway.url}/.well-known/oauth-authorization-server")).json()
        assert server["code_challenge_methods_supported"] == ["S256"]
        assert server["authorization_response_iss_parameter_supported"] is True
        assert "none" in server["token_endpoint_auth_methods_supported"]
        elsewhere = await gateway.planted_token(resource="https://other.example/mcp")
        foreign = await http.post(
            gateway.mcp_url, json=init, headers={**headers, "authorization": f"Bearer {elsewhere}"}
        )
        assert foreign.status_code == 401  # audience-bound: a token for another resource
        narrow = await gateway.planted_token(
            scopes=["pryv:chat"], subject=parse_api_key(key).key_id
        )
        scoped = await http.post(
            gateway.mcp_url, json=init, headers={**headers, "authorization": f"Bearer {narrow}"}
        )
        assert scoped.status_code == 403 and "insufficient_scope" in scoped.text
        expired = await gateway.planted_token(
            subject=parse_api_key(key).key_id, expires_at=int(time.time()) - 1
        )
        late = await http.post(
            gateway.mcp_url, json=init, headers={**headers, "authorization": f"Bearer {expired}"}
        )
        assert late.status_code == 401  # past its expiry, even while still stored


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


async def register_client(http: httpx.AsyncClient, name: str, **metadata: Any) -> str:
    """A public client registered with REDIRECT (RFC 7591); its client_id."""
    registered = await http.post(
        "/register",
        json={
            "client_name": name,
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            **metadata,
        },
    )
    assert registered.status_code == 201, registered.text
    client_id: str = registered.json()["client_id"]
    return client_id


def authorize_params(client_id: str, challenge: str, **extra: str) -> dict[str, str]:
    """/authorize's query for a code with PKCE S256, redirected to REDIRECT."""
    return {
        "response_type": "code",
        "client_id": client_id,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "redirect_uri": REDIRECT,
        **extra,
    }


async def test_pkce_code_reuse_redirects_and_refresh_rotation(gateway: McpGateway) -> None:
    wallet = SigningWallet.create()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        client_id = await register_client(
            http, "raw", grant_types=["authorization_code", "refresh_token"]
        )
        foreign = await http.post(
            "/register", json={"client_name": "x", "redirect_uris": ["http://evil.example/cb"]}
        )
        assert foreign.status_code == 400
        verifier, challenge = pkce()
        query = {
            "response_type": "code",
            "client_id": client_id,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "s1",
        }
        wrong_redirect = await http.get(
            "/authorize", params={**query, "redirect_uri": "http://127.0.0.1:1/other"}
        )
        assert wrong_redirect.status_code == 400
        other_port = await http.get(  # a native app's loopback listener moved port: RFC 8252
            "/authorize", params={**query, "redirect_uri": "http://127.0.0.1:40001/callback"}
        )
        assert other_port.status_code == 302
        assert other_port.headers["location"].startswith(f"{gateway.url}/mcp/consent?")
        elsewhere = await http.get(
            "/authorize",
            params={**query, "redirect_uri": REDIRECT, "resource": "https://other.example/mcp"},
        )
        assert elsewhere.status_code == 302  # refused to the client, as OAuth errors go
        assert "error=invalid_request" in elsewhere.headers["location"]
        assert elsewhere.headers["location"].startswith(REDIRECT)
        url = httpx.URL("/authorize", params={**query, "redirect_uri": REDIRECT})
        answer = await consent(gateway.url, str(url), wallet, env="test")
        code = parse_qs(urlsplit(answer["redirectTo"]).query)["code"][0]
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "client_id": client_id,
        }
        wrong = await http.post("/token", data={**exchange, "code_verifier": "x" * 50})
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        good = await http.post("/token", data={**exchange, "code_verifier": verifier})
        assert good.status_code == 200, good.text
        again = await http.post("/token", data={**exchange, "code_verifier": verifier})
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        refresh = {
            "grant_type": "refresh_token",
            "refresh_token": good.json()["refresh_token"],
            "client_id": client_id,
        }
        rotated = await http.post("/token", data=refresh)
        assert (
            rotated.status_code == 200
            and rotated.json()["access_token"] != good.json()["access_token"]
        )
        replayed = await http.post("/token", data=refresh)  # the old refresh token is spent
        assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
        listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        bearer = {
            "accept": "application/json, text/event-stream",
            "authorization": f"Bearer {rotated.json()['access_token']}",
        }
        evil = await http.post(
            "/mcp", json=listing, headers={**bearer, "origin": "https://evil.example"}
        )
        revoked = await http.post(
            "/revoke",
            data={"token": rotated.json()["access_token"], "client_id": client_id},
        )
        assert revoked.status_code == 200, revoked.text
        after = await http.post("/mcp", json=listing, headers=bearer)
        assert after.status_code == 401  # RFC 7009: a revoked token is refused at once
        assert evil.status_code == 403  # DNS rebinding / cross-site page: refused


async def test_pryv_serve_runs_the_mcp_server_on_its_own_port(tmp_path: Path) -> None:
    """`pryv serve --mcp-port`: the MCP origin is its own (resource, issuer, consent host)."""
    api_port, mcp_port = free_port(), free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PRYV_DATA_DIR": str(tmp_path / "pryv"),
        "PRYV_LOG_FORMAT": "text",
    }
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "cli.main", "serve", "--port", str(api_port),
            "--dashboard-port", "0", "--mcp-port", str(mcp_port),
        ],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    mcp_origin = f"http://127.0.0.1:{mcp_port}"
    try:
        deadline = asyncio.get_running_loop().time() + 180
        async with httpx.AsyncClient(timeout=30) as http:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get(f"{mcp_origin}/healthz")).status_code == 200:
                        break
                assert proc.poll() is None, "pryv serve died at start"
                assert asyncio.get_running_loop().time() < deadline, "never started"
                await asyncio.sleep(0.1)
            metadata = await http.get(f"{mcp_origin}/.well-known/oauth-protected-resource/mcp")
            assert metadata.json()["resource"] == f"{mcp_origin}/mcp"
            server = await http.get(f"{mcp_origin}/.well-known/oauth-authorization-server")
            assert server.json()["authorization_endpoint"] == f"{mcp_origin}/authorize"
            bare = await http.post(
                f"{mcp_origin}/mcp",
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"accept": "application/json, text/event-stream"},
            )
            assert bare.status_code == 401
            api = await http.get(f"http://127.0.0.1:{api_port}/healthz")
            assert api.status_code == 200
    finally:
        proc.kill()
        proc.wait()


MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


async def test_raw_http_pins_the_headers_of_both_eras(gateway: McpGateway) -> None:
    """Conformance over raw HTTP: the 2025 handshake's session header, and 2026-07-28's
    sessionless requests whose Mcp-Method / Mcp-Name headers must match the body."""
    key = await gateway.funded_key(env="test")
    token = await gateway.planted_token(
        scopes=["pryv:read", "pryv:chat"], subject=parse_api_key(key).key_id
    )
    headers = {"accept": "application/json, text/event-stream", "authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=30) as http:
        hello = await http.post(
            gateway.mcp_url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "1"},
                },
            },
            headers=headers,
        )
        assert hello.status_code == 200 and hello.headers.get("mcp-session-id")
        assert '"protocolVersion":"2025-11-25"' in hello.text.replace(" ", "")
        session = {
            **headers,
            "mcp-session-id": hello.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-11-25",
        }
        listed = await http.post(
            gateway.mcp_url,
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            headers=session,
        )
        assert listed.status_code == 200 and '"chat"' in listed.text

        modern = {**headers, "mcp-protocol-version": "2026-07-28"}
        discover = await http.post(
            gateway.mcp_url,
            json={
                "jsonrpc": "2.0",
                "id": 3,
                "method": "server/discover",
                "params": {"_meta": MODERN_META},
            },
            headers={**modern, "mcp-method": "server/discover"},
        )
        assert discover.status_code == 200 and "mcp-session-id" not in discover.headers
        assert "tools" in discover.json()["result"]["capabilities"]
        body = {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "get_balance", "arguments": {}, "_meta": MODERN_META},
        }
        called = await http.post(
            gateway.mcp_url,
            json=body,
            headers={**modern, "mcp-method": "tools/call", "mcp-name": "get_balance"},
        )
        assert called.status_code == 200 and called.json()["result"]["isError"] is False
        wrong_method = await http.post(
            gateway.mcp_url, json=body, headers={**modern, "mcp-method": "tools/list"}
        )
        assert wrong_method.status_code == 400
        assert wrong_method.json()["error"]["code"] == -32020
        wrong_name = await http.post(
            gateway.mcp_url,
            json=body,
            headers={**modern, "mcp-method": "tools/call", "mcp-name": "list_keys"},
        )
        assert wrong_name.status_code == 400 and wrong_name.json()["error"]["code"] == -32020


@pytest.fixture
def client_document_server(tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext, dict[str, Any]]]:
    """An https server for `client.test` (a self-signed certificate the test trusts) serving
    whatever `documents[path]` holds as JSON: where a CIMD client keeps its metadata."""
    server_context, trust = self_signed("client.test", tmp_path)
    documents: dict[str, Any] = {}

    class Documents(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            found = documents.get(self.path)
            body = json.dumps(found).encode() if found is not None else b"{}"
            self.send_response(200 if found is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Documents)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], trust, documents
    server.shutdown()
    server.server_close()


async def test_client_id_metadata_documents(
    gateway: McpGateway, client_document_server: tuple[int, ssl.SSLContext, dict[str, Any]]
) -> None:
    """A client whose client_id is an https URL is the document there: no registration."""
    port, trust, documents = client_document_server
    assert gateway.door is not None

    async def resolve(host: str, _port: int) -> list[str]:
        assert host == "client.test"
        return ["127.0.0.1"]

    gateway.door.provider.fetch_options = {
        "resolver": resolve,
        "allow_addresses": ["127.0.0.1"],
        "verify": trust,
    }
    client_id = f"https://client.test:{port}/oauth/client.json"
    documents["/oauth/client.json"] = {
        "client_id": client_id,
        "client_name": "Doc client",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
    }
    impostor = f"https://client.test:{port}/oauth/impostor.json"
    documents["/oauth/impostor.json"] = {**documents["/oauth/client.json"]}  # names another URL
    verifier, challenge = pkce()
    query = {
        "response_type": "code",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "s",
        "redirect_uri": REDIRECT,
    }
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        server = (await http.get("/.well-known/oauth-authorization-server")).json()
        assert server["client_id_metadata_document_supported"] is True
        for refused in (impostor, f"https://client.test:{port}/missing.json"):
            answer = await http.get("/authorize", params={**query, "client_id": refused})
            assert answer.status_code == 400, refused
        foreign = await http.get(
            "/authorize",
            params={**query, "client_id": client_id, "redirect_uri": "http://127.0.0.1:9/x"},
        )
        assert foreign.status_code == 400
        url = httpx.URL("/authorize", params={**query, "client_id": client_id})
        wallet = SigningWallet.create()
        consented = await consent(gateway.url, str(url), wallet, env="test")
        code = parse_qs(urlsplit(consented["redirectTo"]).query)["code"][0]
        token = await http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "client_id": client_id,
                "code_verifier": verifier,
            },
        )
        assert token.status_code == 200, token.text
    await gateway.settled()
    listed = await gateway.platform.read_store.get_fields(
        f"key:{ids.api_key_id(consented['connectionId'])}"
    )
    assert listed["connection_client"] == "Doc client (client.test)"


async def test_a_cancelled_call_settles_what_it_used(gateway: McpGateway) -> None:
    """The client gives up on a long `chat`: the server stops the upstream stream and bills
    the prompt and what was streamed so far, not the whole answer."""
    wallet = SigningWallet.create()
    await fund(gateway, wallet, "5", env="test")
    words = " ".join(f"w{i}" for i in range(400))  # echo-slow streams it back 3 chars / 30 ms
    async with mcp_client(gateway, wallet, env="test") as (client, _tokens, answers):
        call = asyncio.create_task(
            client.call_tool(
                "chat", {"model": "echo-slow", "messages": [{"role": "user", "content": words}]}
            )
        )
        [connection_id] = [a["connectionId"] for a in answers]
        deadline = asyncio.get_running_loop().time() + 120
        while not await placed_holds(gateway.platform, connection_id):  # the upstream is called
            assert asyncio.get_running_loop().time() < deadline and not call.done()
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # some of the answer streams
        call.cancel()  # the client gives up
        with contextlib.suppress(asyncio.CancelledError):
            await call
        [settled] = await settlements_of(gateway.platform, connection_id, 1, wait=60)
    assert settled["outcome"] == "client_abort" and settled["estimated"] is True
    assert 0 < settled["tokens_out"] < estimate_text_tokens(words)
    assert 0 < settled["actual_micros"] < settled["held_micros"]


async def test_consent_needs_the_wallets_own_fresh_signature(gateway: McpGateway) -> None:
    wallet, thief = SigningWallet.create(), SigningWallet.create()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        _verifier, challenge = pkce()
        client_id = await register_client(http, "c")
        sent = await http.get("/authorize", params=authorize_params(client_id, challenge))
        request_id = parse_qs(urlsplit(sent.headers["location"]).query)["request"][0]

        sent_bodies: list[dict[str, Any]] = []

        async def post(signer: SigningWallet) -> httpx.Response:
            facts = (
                await http.get(
                    "/mcp/consent",
                    params={"request": request_id},
                    headers={"accept": "application/json"},
                )
            ).json()
            text = siwe_text(wallet, facts)
            _address, signature = sign_message(signer.private_key, text)
            body = {"request": request_id, "message": text, "signature": signature, "env": "test"}
            sent_bodies.append(body)
            return await http.post("/mcp/consent", json=body)

        facts = (
            await http.get(
                "/mcp/consent",
                params={"request": request_id},
                headers={"accept": "application/json"},
            )
        ).json()
        facts["siwe"]["statement"] = "Connect an MCP client to your Pryv account. Request: other"
        text = siwe_text(wallet, facts)
        _address, signature = sign_message(wallet.private_key, text)
        elsewhere = await http.post(
            "/mcp/consent",
            json={"request": request_id, "message": text, "signature": signature},
        )  # signed for another authorization request: not spendable on this one
        assert elsewhere.status_code == 403
        assert elsewhere.json()["error"]["code"] == "MESSAGE_INVALID"
        forged = await post(thief)  # a message naming the wallet, signed by someone else
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "SIGNATURE_INVALID"
        assert (await post(wallet)).status_code == 200
        replay = await http.post("/mcp/consent", json=sent_bodies[-1])  # the same, once more
        assert replay.status_code == 400 and replay.json()["error"]["code"] == "consent_expired"
