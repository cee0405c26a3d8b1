"""The dashboard's sign-in, session and CSRF rules, and how it verifies destructive actions —
over HTTP (no browser), on both deployments."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.app import create_app
from bootstrap.platform import Platform
from dashboard.app import create_dashboard
from domain import ids
from domain.siwe import SiweMessage, format_siwe_message
from infra.wallet_signatures import sign_message
from projections import keys as keys_projection
from tests.wallets import SigningWallet
from workers.embedded import running_workers

LOCAL = "http://127.0.0.1:8001"
CSRF = {"X-Pryv-Dashboard": "1"}


def make_client(app: Any, base_url: str = LOCAL) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=base_url)


@pytest.fixture
async def dashboard(platform: Platform) -> AsyncIterator[Any]:
    async with running_workers(platform):
        api_app = create_app(platform)
        yield create_dashboard(platform, api_base_url="http://127.0.0.1:8000", api_app=api_app)


@pytest.fixture
async def client(dashboard: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(dashboard) as c:
        yield c


def siwe_text(
    wallet: SigningWallet, nonce: str, *, domain: str = "127.0.0.1:8001", **changes: Any
) -> str:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "scheme": None,
        "domain": domain,
        "address": wallet.address,
        "statement": "Sign in to the Pryv platform dashboard.",
        "uri": f"http://{domain}/",
        "version": "1",
        "chain_id": 1,
        "nonce": nonce,
        "issued_at": now,
        "expiration_time": now + timedelta(minutes=10),
    }
    fields.update(changes)
    return format_siwe_message(SiweMessage(**fields))


async def login_body(
    client: httpx.AsyncClient,
    wallet: SigningWallet,
    *,
    signer: SigningWallet | None = None,
    **changes: Any,
) -> dict[str, str]:
    issued = await client.get("/auth/nonce", params={"address": wallet.address.lower()})
    assert issued.status_code == 200, issued.text
    assert issued.json()["address"] == wallet.address  # EIP-55 for the page
    nonce = changes.pop("nonce", issued.json()["nonce"])
    text = siwe_text(wallet, nonce, **changes)
    _addr, signature = sign_message((signer or wallet).private_key, text)
    return {"message": text, "signature": signature}


async def login(client: httpx.AsyncClient, wallet: SigningWallet) -> httpx.Response:
    body = await login_body(client, wallet)
    response = await client.post("/auth/login", json=body, headers=CSRF)
    assert response.status_code == 200, response.text
    return response


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def test_login_sets_a_short_strict_httponly_cookie(client: httpx.AsyncClient) -> None:
    wallet = SigningWallet.create()
    response = await login(client, wallet)
    assert response.json()["wallet"] == wallet.address.lower()
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("pryv_session=")
    for attribute in ("HttpOnly", "Max-Age=1800", "Path=/", "SameSite=strict"):
        assert attribute.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http on loopback
    session = await client.get("/auth/session")
    assert session.json()["wallet"] == wallet.address.lower()
    for path in ("keys", "balance", "ledger", "usage", "settings"):
        assert (await client.get(f"/app/api/{path}")).status_code == 200, path


async def test_https_cookie_is_secure_and_host_prefixed(dashboard: Any) -> None:
    async with make_client(dashboard, "https://127.0.0.1:8001") as client:
        wallet = SigningWallet.create()
        body = await login_body(client, wallet, uri="https://127.0.0.1:8001/")
        response = await client.post("/auth/login", json=body, headers=CSRF)
        assert response.status_code == 200, response.text
        cookie = response.headers["set-cookie"]
        assert cookie.startswith("__Host-pryv_session=") and "secure" in cookie.lower()


async def test_reads_need_a_session_public_pages_do_not(client: httpx.AsyncClient) -> None:
    for path in ("keys", "balance", "ledger", "usage", "settings"):
        response = await client.get(f"/app/api/{path}")
        assert response.status_code == 401 and error_code(response) == "not_signed_in"
    assert (await client.get("/auth/session")).status_code == 401
    for path in ("models", "docs", "config", "privacy-options"):
        assert (await client.get(f"/app/api/{path}")).status_code == 200, path
    client.cookies.set("pryv_session", "forged-token")
    assert (await client.get("/app/api/keys")).status_code == 401


async def test_a_signed_message_signs_in_once(client: httpx.AsyncClient) -> None:
    wallet = SigningWallet.create()
    body = await login_body(client, wallet)
    assert (await client.post("/auth/login", json=body, headers=CSRF)).status_code == 200
    replay = await client.post("/auth/login", json=body, headers=CSRF)
    assert replay.status_code == 403 and error_code(replay) == "NONCE_REPLAY"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"domain": "evil.example"}, "DOMAIN_MISMATCH"),
        ({"uri": "http://evil.example/"}, "URI_MISMATCH"),
        ({"chain_id": 5}, "CHAIN_MISMATCH"),
        ({"expiration_time": datetime.now(UTC) - timedelta(seconds=1)}, "MESSAGE_INVALID"),
        (
            {
                "issued_at": datetime.now(UTC) - timedelta(minutes=11),
                "expiration_time": datetime.now(UTC) - timedelta(minutes=1),
            },
            "TIMESTAMP_EXPIRED",
        ),
        ({"nonce": "a1b2c3d4e5f6a7b8"}, "NONCE_INVALID"),
    ],
)
async def test_login_refusals(
    client: httpx.AsyncClient, changes: dict[str, Any], code: str
) -> None:
    wallet = SigningWallet.create()
    body = await login_body(client, wallet, **changes)
    response = await client.post("/auth/login", json=body, headers=CSRF)
    assert response.status_code == 403 and error_code(response) == code, response.text
    assert "set-cookie" not in response.headers


async def test_login_signed_by_another_key_or_garbage(client: httpx.AsyncClient) -> None:
    wallet = SigningWallet.create()
    body = await login_body(client, wallet, signer=SigningWallet.create())
    response = await client.post("/auth/login", json=body, headers=CSRF)
    assert error_code(response) == "SIGNATURE_INVALID"
    body = {**(await login_body(client, wallet)), "signature": "0xdeadbeef"}
    response = await client.post("/auth/login", json=body, headers=CSRF)
    assert error_code(response) == "SIGNATURE_VERIFY_ERROR"
    # Neither burned the nonce: the genuine signature still signs in.
    genuine = await login_body(client, wallet)
    forged = {**genuine, "signature": sign_message(SigningWallet.create().private_key, "x")[1]}
    assert (await client.post("/auth/login", json=forged, headers=CSRF)).status_code == 403
    assert (await client.post("/auth/login", json=genuine, headers=CSRF)).status_code == 200


async def test_login_csrf_rules(client: httpx.AsyncClient) -> None:
    wallet = SigningWallet.create()
    for headers in (
        {},
        {"X-Pryv-Dashboard": "yes"},
        {**CSRF, "Origin": "https://evil.example"},
        {**CSRF, "Origin": "null"},
        {**CSRF, "Sec-Fetch-Site": "cross-site"},
    ):
        body = await login_body(client, wallet)
        response = await client.post("/auth/login", json=body, headers=headers)
        assert response.status_code == 403 and error_code(response) == "csrf_failed", headers
    body = await login_body(client, wallet)
    headers = {**CSRF, "Origin": LOCAL, "Sec-Fetch-Site": "same-origin"}
    assert (await client.post("/auth/login", json=body, headers=headers)).status_code == 200


async def test_sign_in_needs_a_public_url_off_loopback(platform: Platform, dashboard: Any) -> None:
    async with make_client(dashboard, "http://platform.example") as client:
        response = await client.get("/auth/nonce")
        assert response.status_code == 403 and error_code(response) == "DOMAIN_MISMATCH"
    configured = create_dashboard(
        platform,
        api_base_url="https://api.pryv.ai",
        public_url="https://platform.pryv.ai",
        api_app=dashboard.state.dashboard.api_app,
    )
    async with make_client(configured, "https://platform.pryv.ai") as client:
        wallet = SigningWallet.create()
        body = await login_body(
            client, wallet, domain="platform.pryv.ai", uri="https://platform.pryv.ai/"
        )
        assert (await client.post("/auth/login", json=body, headers=CSRF)).status_code == 200
        # Behind a TLS-terminating proxy (plain http inside): still a Secure cookie, and the
        # public origin is the one Origin must name.
        async with make_client(configured, "http://platform.pryv.ai") as proxied:
            body = await login_body(
                proxied, wallet, domain="platform.pryv.ai", uri="https://platform.pryv.ai/"
            )
            origin = {**CSRF, "Origin": "https://platform.pryv.ai"}
            response = await proxied.post("/auth/login", json=body, headers=origin)
            assert response.status_code == 200, response.text
            assert response.headers["set-cookie"].startswith("__Host-pryv_session=")
            assert "secure" in response.headers["set-cookie"].lower()
        # A message for the loopback name is refused here, whatever Host says.
        body = await login_body(client, wallet)
        response = await client.post(
            "/auth/login", json=body, headers={**CSRF, "Host": "127.0.0.1:8001"}
        )
        assert error_code(response) == "DOMAIN_MISMATCH"


async def test_logout_deletes_the_session(client: httpx.AsyncClient) -> None:
    await login(client, SigningWallet.create())
    token = client.cookies.get("pryv_session")
    assert (await client.post("/auth/logout")).status_code == 403  # CSRF header needed
    response = await client.post("/auth/logout", headers=CSRF)
    assert response.status_code == 200 and "pryv_session=" in response.headers["set-cookie"]
    client.cookies.set("pryv_session", str(token))  # the old cookie, replayed
    assert (await client.get("/app/api/keys")).status_code == 401


async def test_sessions_are_shared_by_dashboard_processes_with_redis(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    """A second dashboard process (a replica, or this one restarted) on the same deployment
    knows the session with Redis; embedded, sessions are per process (documented)."""
    await login(client, SigningWallet.create())
    token = str(client.cookies.get("pryv_session"))
    replica = create_dashboard(platform, api_base_url="http://127.0.0.1:8000")
    async with make_client(replica) as other:
        other.cookies.set("pryv_session", token)
        seen = await other.get("/auth/session")
        shared = platform.settings.redis_url is not None
        assert seen.status_code == (200 if shared else 401), seen.text
        if shared:  # signing out on one ends it on all
            assert (await client.post("/auth/logout", headers=CSRF)).status_code == 200
            assert (await other.get("/auth/session")).status_code == 401


MUTATIONS = [
    ("POST", "/app/api/keys"),
    ("DELETE", "/app/api/keys/AAAAAAAAAAAAAAAA"),
    ("POST", "/app/api/checkout"),
    ("PUT", "/app/api/settings"),
    ("POST", "/auth/login"),
    ("POST", "/auth/logout"),
]


async def test_every_state_change_needs_the_csrf_header(
    client: httpx.AsyncClient, dashboard: Any
) -> None:
    await login(client, SigningWallet.create())
    for method, path in MUTATIONS:
        response = await client.request(method, path, json={})
        assert response.status_code == 403 and error_code(response) == "csrf_failed", path
    # And no other route accepts a state-changing method at all.
    documented = {(m, re.sub(r"\{\w+\}", "AAAAAAAAAAAAAAAA", p)) for m, p in MUTATIONS}
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path in ("/", "/healthz", "/app/api/balance", "/app/api/docs", "/auth/session"):
            if (method, path) not in documented:
                response = await client.request(method, path, headers=CSRF)
                assert response.status_code in (404, 405), (method, path)


async def keys_of(platform: Platform, wallet: SigningWallet) -> list[keys_projection.KeyRecord]:
    account = str(ids.account_id(wallet.address.lower()))
    return [r for _p, r in await keys_projection.list_keys(platform.read_store, account)]


async def test_actions_are_verified_like_the_api_and_bound_to_the_session(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    wallet, other = SigningWallet.create(), SigningWallet.create()
    body = {"name": "k", "env": "test"}
    unsigned = await client.post("/app/api/keys", json=body, headers=CSRF)
    assert unsigned.status_code == 401 and error_code(unsigned) == "not_signed_in"
    await login(client, wallet)

    missing = await client.post("/app/api/keys", json=body, headers=CSRF)
    assert missing.status_code == 401 and error_code(missing) == "missing_wallet_auth"
    # Signed by another key for the session's wallet: the API's own 403.
    forged = {**body, **wallet.fields("create", signer=other)}
    response = await client.post("/app/api/keys", json=forged, headers=CSRF)
    assert response.status_code == 403 and error_code(response) == "SIGNATURE_INVALID"
    # Another wallet signing for itself: walletAddress is replaced by the session's wallet.
    response = await client.post(
        "/app/api/keys", json={**body, **other.fields("create")}, headers=CSRF
    )
    assert response.status_code == 403 and error_code(response) == "SIGNATURE_INVALID"
    wrong_action = {**body, **wallet.fields("list")}
    response = await client.post("/app/api/keys", json=wrong_action, headers=CSRF)
    assert error_code(response) == "ACTION_MISMATCH"
    extra = {**body, "owner": other.address, **wallet.fields("create")}
    response = await client.post("/app/api/keys", json=extra, headers=CSRF)
    assert response.status_code == 400 and error_code(response) == "validation_error"
    assert await keys_of(platform, wallet) == [] and await keys_of(platform, other) == []

    signed = wallet.fields("create", nonce=f"dash-{uuid.uuid4().hex}")
    created = await client.post("/app/api/keys", json={**body, **signed}, headers=CSRF)
    assert created.status_code == 201, created.text
    key_id = created.json()["id"]
    assert created.json()["key"].startswith("pryv_test_")
    [record] = await keys_of(platform, wallet)
    assert record.key_id == key_id and record.wallet == wallet.address.lower()
    # The same signed message again, through the dashboard or the API: one nonce, one use.
    replay = await client.post("/app/api/keys", json={**body, **signed}, headers=CSRF)
    assert error_code(replay) == "NONCE_REPLAY"
    async with make_client(create_app(platform), "http://api.test") as api:
        direct = await api.post("/api/v1/keys", json={**body, **signed})
    assert error_code(direct) == "NONCE_REPLAY"

    # Revoke: keyId is bound by the signature too.
    wrong_key = wallet.fields("revoke", "BBBBBBBBBBBBBBBB")
    response = await client.request(
        "DELETE", f"/app/api/keys/{key_id}", json=wrong_key, headers=CSRF
    )
    assert error_code(response) == "KEY_ID_MISMATCH"
    response = await client.request(
        "DELETE", f"/app/api/keys/{key_id}", json=wallet.fields("revoke", key_id), headers=CSRF
    )
    assert response.status_code == 200 and response.json()["status"] == "revoked"


async def test_settings_and_checkout_forwarding(client: httpx.AsyncClient) -> None:
    wallet = SigningWallet.create()
    await login(client, wallet)
    update = {"privacy": {"mode": "off"}, "consent": {"analytics": True, "marketing": False}}
    response = await client.put(
        "/app/api/settings", json={**update, **wallet.fields("settings")}, headers=CSRF
    )
    assert response.status_code == 200, response.text
    assert (await client.get("/app/api/settings")).json()["privacy"]["mode"] == "off"
    checkout = await client.post(
        "/app/api/checkout", json={"usdAmount": "10", **wallet.fields("checkout")}, headers=CSRF
    )
    assert checkout.status_code == 503 and error_code(checkout) == "billing_not_configured"
    packs = await client.get("/app/api/credit-packs")
    assert packs.json()["checkoutAvailable"] is False and packs.json()["data"]


async def test_stripe_return_is_sent_on_to_the_credits_page(client: httpx.AsyncClient) -> None:
    paid = await client.get("/checkout/return?status=success&session_id=cs_test_a1B2")
    assert paid.status_code == 303
    assert paid.headers["location"] == "/#/credits?checkout=success&session=cs_test_a1B2"
    odd = await client.get("/checkout/return", params={"status": "x", "session_id": "<b>"})
    assert odd.headers["location"] == "/#/credits?checkout=cancel"
    assert (await client.get("/app/api/checkout/cs_test_a1B2")).status_code == 401


async def test_pages_headers_and_docs(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert re.search(r'src="/static/js/main\.js"', page.text)
    assert (await client.get("/static/js/main.js")).status_code == 200
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    api_reads = await client.get("/app/api/models")
    assert api_reads.headers["cache-control"] == "no-store"
    assert [m["id"] for m in api_reads.json()["data"]] == ["pryv-echo"]

    docs = (await client.get("/app/api/docs")).json()
    assert docs["apiBaseUrl"] == "http://127.0.0.1:8000"
    ops = {(e["method"], e["path"]): e for e in docs["endpoints"]}
    assert ops[("POST", "/api/v1/keys")]["walletAction"] == "create"
    assert ops[("DELETE", "/api/v1/keys/{key_id}")]["walletAction"] == "revoke"
    assert ops[("PUT", "/api/v1/settings")]["walletAction"] == "settings"
    assert ops[("POST", "/v1/chat/completions")]["auth"] == "Bearer"
    assert ops[("GET", "/api/v1/billing/credit-packs")]["auth"] == "Public"
    assert ops[("POST", "/api/v1/billing/webhook")]["auth"] == "Stripe-Signature"
    codes = {(e["status"], e["code"]) for e in docs["errors"]}
    for expected in [
        (400, "validation_error"),
        (401, "missing_api_key"),
        (401, "missing_wallet_auth"),
        (402, "insufficient_credits"),
        (403, "SIGNATURE_INVALID"),
        (403, "NONCE_REPLAY"),
        (429, "rate_limit_exceeded_tpm"),
        (503, "billing_not_configured"),
    ]:
        assert expected in codes, expected
    assert "EMAIL_ADDRESS" in docs["privacy"]["entityTypes"]
    assert "ORGANIZATION" not in docs["privacy"]["defaultEntities"]
