"""Wallet-signed management API over both deployments (embedded, and PostgreSQL+NATS+Redis)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from api.app import create_app
from bootstrap.platform import Platform
from commands.positions import wait_until_applied
from domain.api_keys import hash_api_key, parse_api_key
from projections import keys as keys_projection
from projections.catalog import PROJECTIONS
from tests.evidence import OPERATOR, stripe
from tests.wallets import STALE, SigningWallet
from workers.embedded import running_workers


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(platform)
    async with running_workers(platform):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://pryv.test") as c:
            yield c


async def create_key(
    client: httpx.AsyncClient, wallet: SigningWallet, **body: Any
) -> dict[str, Any]:
    response = await client.post("/api/v1/keys", json={**wallet.fields("create"), **body})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def fund(
    platform: Platform,
    wallet: SigningWallet,
    ref: str,
    usd_micros: int = 5_000_000,
    *,
    env: str = "test",
) -> int:
    """Grant `wallet` credit and wait until every projection has it; the grant's position."""
    granted = await asyncio.to_thread(
        platform.app.grant_credits,
        authorization=OPERATOR,
        wallet=wallet.address.lower(),
        env=env,
        amount_micros=usd_micros,
        reason="t",
        granted_by="t",
        grant_ref=ref,
    )
    assert granted.position is not None
    for name in PROJECTIONS:
        assert await wait_until_applied(platform.read_store, name, granted.position, 30)
    return granted.position


async def test_create_list_revoke_roundtrip(client: httpx.AsyncClient, platform: Platform) -> None:
    wallet = SigningWallet.create()
    created = await create_key(
        client,
        wallet,
        name="Production key",
        models=["pryv-echo"],
        rpm=60,
        monthlyBudgetUsd="25.50",
        expiresInDays=30,
    )
    token = created["key"]
    parsed = parse_api_key(token)
    assert created["id"] == parsed.key_id
    assert created["prefix"] == parsed.prefix and created["last4"] == token[-4:]
    assert created["monthlyBudgetMicros"] == 25_500_000
    assert created["status"] == "active"

    listed = await client.get("/api/v1/keys", headers=wallet.headers("list"))
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["data"]
    assert item["id"] == parsed.key_id and item["name"] == "Production key"
    assert "key" not in item and token not in listed.text  # the secret is never shown again

    revoked = await client.request(
        "DELETE", f"/api/v1/keys/{parsed.key_id}", json=wallet.fields("revoke", parsed.key_id)
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["deleted"] is True
    # The mark refuses the key at once; the key index, with the bus in between, catches up.
    assert await platform.meter.is_revoked(parsed.key_id)
    record = await eventually_revoked(platform, token)
    assert record.revoked_at is not None


async def eventually_revoked(platform: Platform, token: str) -> keys_projection.KeyRecord:
    secret_hash = hash_api_key(platform.settings.key_pepper, token)
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        record = await keys_projection.read_key_by_hash(platform.read_store, secret_hash)
        if record is not None and record.status == "revoked":
            return record
        assert asyncio.get_running_loop().time() < deadline, "the key index never applied it"
        await asyncio.sleep(0.05)


async def test_list_is_paginated_newest_first(client: httpx.AsyncClient) -> None:
    wallet = SigningWallet.create()
    ids = [(await create_key(client, wallet, name=f"k{i}"))["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get("/api/v1/keys", params=params, headers=wallet.headers("list"))
        ).json()
        seen += [item["id"] for item in page["data"]]
        if not page["hasMore"]:
            break
        cursor = page["nextCursor"]
    assert seen == list(reversed(ids))


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("wrong_action", "ACTION_MISMATCH"),
        ("wrong_key_id", "KEY_ID_MISMATCH"),
        ("replayed_nonce", "NONCE_REPLAY"),
        ("stale_ts", "TIMESTAMP_EXPIRED"),
        ("other_signer", "SIGNATURE_INVALID"),
        ("garbage_signature", "SIGNATURE_VERIFY_ERROR"),
    ],
)
async def test_wallet_checks_each_have_their_code(
    client: httpx.AsyncClient, case: str, code: str
) -> None:
    wallet = SigningWallet.create()
    key_id = (await create_key(client, wallet))["id"]
    fields = {
        "wrong_action": lambda: wallet.fields("list", key_id),
        "wrong_key_id": lambda: wallet.fields("revoke", "AAAAAAAAAAAAAAAA"),
        "replayed_nonce": lambda: wallet.fields("revoke", key_id, nonce="reused-nonce-1"),
        "stale_ts": lambda: wallet.fields("revoke", key_id, ts=datetime.now(UTC) - STALE),
        "other_signer": lambda: wallet.fields("revoke", key_id, signer=SigningWallet.create()),
        "garbage_signature": lambda: {**wallet.fields("revoke", key_id), "signature": "0x1234"},
    }[case]()
    if case == "replayed_nonce":
        first = await client.get(
            "/api/v1/billing/balance",
            headers=wallet.headers("balance", nonce="reused-nonce-1"),
        )
        assert first.status_code == 200
    response = await client.request("DELETE", f"/api/v1/keys/{key_id}", json=fields)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == code
    # ...and the key is untouched.
    listed = await client.get("/api/v1/keys", headers=wallet.headers("list"))
    assert listed.json()["data"][0]["status"] == "active"


async def test_missing_wallet_auth_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/keys")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "missing_wallet_auth"


async def test_another_wallet_cannot_touch_my_keys(client: httpx.AsyncClient) -> None:
    mine, theirs = SigningWallet.create(), SigningWallet.create()
    key_id = (await create_key(client, mine))["id"]
    # A perfectly valid signature, by the other wallet, for my key id.
    attempt = await client.request(
        "DELETE", f"/api/v1/keys/{key_id}", json=theirs.fields("revoke", key_id)
    )
    assert attempt.status_code == 404
    assert attempt.json()["error"]["code"] == "key_not_found"
    their_list = await client.get("/api/v1/keys", headers=theirs.headers("list"))
    assert their_list.json()["data"] == []
    my_list = await client.get("/api/v1/keys", headers=mine.headers("list"))
    assert my_list.json()["data"][0]["status"] == "active"


async def test_balance_and_ledger_after_grant_and_purchase(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    import asyncio

    wallet = SigningWallet.create()
    await asyncio.to_thread(
        platform.app.grant_credits,
        authorization=OPERATOR,
        wallet=wallet.address,
        env="live",
        amount_micros=5_000_000,
        reason="welcome",
        granted_by="test",
        grant_ref="g-1",
    )
    result = await asyncio.to_thread(
        platform.app.record_purchase,
        evidence=stripe(),
        source_id="cs_test_1",
        wallet=wallet.address,
        usd_micros=10_000_000,
    )
    from commands.positions import wait_until_applied

    assert result.position is not None
    assert await wait_until_applied(platform.read_store, "ledger", result.position, 5)
    bal = (await client.get("/api/v1/billing/balance", headers=wallet.headers("balance"))).json()
    assert bal["balanceMicros"] == 15_000_000 and bal["availableUsd"] == "15.000000"
    assert bal["test"]["balanceMicros"] == 0
    page = (
        await client.get(
            "/api/v1/billing/ledger", params={"limit": 1}, headers=wallet.headers("ledger")
        )
    ).json()
    assert [e["type"] for e in page["data"]] == ["purchase"] and page["hasMore"]
    older = (
        await client.get(
            "/api/v1/billing/ledger",
            params={"cursor": page["nextCursor"]},
            headers=wallet.headers("ledger"),
        )
    ).json()
    assert [(e["type"], e["sourceId"]) for e in older["data"]] == [("grant", "g-1")]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"env": "prod"}, "env"),
        ({"rpm": 0}, "rpm"),
        ({"monthlyBudgetUsd": "1.0000001"}, "monthlyBudgetUsd"),
        ({"expiresAt": "2001-01-01T00:00:00Z"}, "expiresAt"),
        ({"unknownField": 1}, "unknownField"),
        ({"models": "gpt"}, "models"),
    ],
)
async def test_bad_create_bodies_are_400(
    client: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    wallet = SigningWallet.create()
    response = await client.post("/api/v1/keys", json={**wallet.fields("create"), **body})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_update_key_terms(client: httpx.AsyncClient, platform: Platform) -> None:
    """PATCH changes what it names, keeps the rest, clears with null, takes effect at once."""
    wallet = SigningWallet.create()
    created = await create_key(
        client, wallet, env="test", rpm=60, monthlyBudgetUsd="25", models=["pryv-echo"]
    )
    key_id = created["id"]

    async def patch(body: dict[str, Any], action: str = "update", key: str = key_id) -> Any:
        fields = wallet.fields(action, key)
        return await client.patch(f"/api/v1/keys/{key_id}", json={**fields, **body})

    changed = await patch({"name": "Renamed", "rpm": 1, "monthlyBudgetUsd": None})
    assert changed.status_code == 200, changed.text
    doc = changed.json()
    assert (doc["name"], doc["rpm"], doc["monthlyBudgetUsd"]) == ("Renamed", 1, None)
    assert doc["models"] == ["pryv-echo"] and doc["unchanged"] is False  # kept
    again = await patch({"rpm": 1})
    assert again.json()["unchanged"] is True  # nothing new: no event
    # The new RPM holds on the very next requests (the limits projection was awaited).
    await fund(platform, wallet, f"{key_id}-g")
    ask = {"model": "pryv-echo", "messages": [{"role": "user", "content": "hi"}]}
    bearer = {"Authorization": f"Bearer {created['key']}"}
    statuses = []
    for _ in range(2):
        answer = await client.post("/v1/chat/completions", json=ask, headers=bearer)
        statuses.append(answer.status_code)
    assert statuses[-1] == 429
    log = await asyncio.to_thread(platform.app.read_log, 0, 1_000_000)
    assert sum(e.topic == "pryv.ApiKey.LimitsChanged.v1" for e in log) == 1

    wrong_action = await patch({"rpm": 5}, action="revoke")
    assert (
        wrong_action.status_code == 403
        and wrong_action.json()["error"]["code"] == "ACTION_MISMATCH"
    )
    other_key = await patch({"rpm": 5}, key="someOtherKey1234")
    assert other_key.status_code == 403 and other_key.json()["error"]["code"] == "KEY_ID_MISMATCH"
    unknown = await client.patch(
        "/api/v1/keys/AAAAAAAAAAAAAAAA", json={**wallet.fields("update", "AAAAAAAAAAAAAAAA")}
    )
    assert unknown.status_code == 404
    past = await patch({"expiresAt": "2020-01-01T00:00:00Z"})
    assert past.status_code == 400 and past.json()["error"]["param"] == "expiresAt"
    extra = await patch({"secret": "x"})
    assert extra.status_code == 400
    revoked = await client.request(
        "DELETE", f"/api/v1/keys/{key_id}", headers=wallet.headers("revoke", key_id)
    )
    assert revoked.status_code == 200
    assert (await patch({"rpm": 9})).status_code == 400  # a revoked key cannot change


async def test_rotate_key_rolls_the_secret_with_a_grace_period(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    """POST /keys/{id}/rotate: a new secret for the same key; the old one works until its
    grace ends (here 10 s), then is refused — and a grace of 0 ends it at once. Every wallet
    check still applies, and the roll is one ApiKey.Rolled event with the wallet's evidence."""
    wallet = SigningWallet.create()
    created = await create_key(client, wallet, env="test", models=["pryv-echo"])
    key_id, old_token = created["id"], created["key"]
    await fund(platform, wallet, f"{key_id}-rot")
    ask = {"model": "pryv-echo", "messages": [{"role": "user", "content": "hi"}]}

    async def call(token: str) -> int:
        answer = await client.post(
            "/v1/chat/completions", json=ask, headers={"Authorization": f"Bearer {token}"}
        )
        return answer.status_code

    async def rotate(grace: int, **fields: Any) -> httpx.Response:
        signed = fields or wallet.fields("rotate", key_id)
        return await client.post(
            f"/api/v1/keys/{key_id}/rotate", json={**signed, "gracePeriodSeconds": grace}
        )

    for bad, code in (
        (wallet.fields("revoke", key_id), "ACTION_MISMATCH"),
        (wallet.fields("rotate", "AAAAAAAAAAAAAAAA"), "KEY_ID_MISMATCH"),
        (wallet.fields("rotate", key_id, ts=datetime.now(UTC) - STALE), "TIMESTAMP_EXPIRED"),
        (wallet.fields("rotate", key_id, signer=SigningWallet.create()), "SIGNATURE_INVALID"),
    ):
        refused = await rotate(60, **bad)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == code
    too_long = await rotate(8 * 24 * 3600)
    assert too_long.status_code == 400
    assert await call(old_token) == 200  # warm (the PII engine loads on a first call)

    rolled = await rotate(10)
    assert rolled.status_code == 200, rolled.text
    doc = rolled.json()
    new_token = doc["key"]
    assert doc["id"] == key_id and new_token != old_token and doc["last4"] == new_token[-4:]
    assert parse_api_key(new_token).key_id == key_id and doc["previousSecretExpiresAt"]
    assert await call(new_token) == 200
    assert await call(old_token) == 200  # in its grace period
    deadline = asyncio.get_running_loop().time() + 60
    while await call(old_token) != 401:
        assert asyncio.get_running_loop().time() < deadline, "the old secret never expired"
        await asyncio.sleep(0.5)
    assert await call(new_token) == 200

    # Grace 0: the secret just replaced stops at once; the one before it too.
    again = await rotate(0)
    assert again.status_code == 200, again.text
    newest = again.json()["key"]
    assert (await call(new_token), await call(old_token), await call(newest)) == (401, 401, 200)
    log = await asyncio.to_thread(platform.app.read_log, 0, 1_000_000)
    rolls = [e for e in log if e.topic == "pryv.ApiKey.Rolled.v1"]
    assert len(rolls) == 2 and rolls[0].data["evidence"]["kind"] == "wallet"
    assert "action=rotate" in rolls[0].data["evidence"]["message"]


async def test_a_roll_or_new_limits_take_effect_at_once_on_another_instance(
    services_settings: Any,
) -> None:
    """Two API instances over the same PostgreSQL, Redis and NATS: instance B has the old
    secret cached (it served it); a roll with grace 0 on instance A is refused by B on the very
    next request, and B admits the new secret; an RPM lowered on A is B's limit next request."""
    from bootstrap.platform import open_platform

    first, second = await open_platform(services_settings), await open_platform(services_settings)
    try:
        async with contextlib.AsyncExitStack() as stack:
            clients = []
            for platform in (first, second):
                await stack.enter_async_context(running_workers(platform))
                transport = httpx.ASGITransport(app=create_app(platform))
                clients.append(
                    await stack.enter_async_context(
                        httpx.AsyncClient(transport=transport, base_url="http://pryv.test")
                    )
                )
            a, b = clients
            wallet = SigningWallet.create()
            created = await create_key(a, wallet, env="test", models=["pryv-echo"])
            granted = await asyncio.to_thread(
                first.app.grant_credits,
                authorization=OPERATOR,
                wallet=wallet.address.lower(),
                env="test",
                amount_micros=5_000_000,
                reason="t",
                granted_by="t",
                grant_ref=f"{created['id']}-two",
            )
            assert granted.position is not None
            for platform in (first, second):
                for name in PROJECTIONS:
                    assert await wait_until_applied(platform.read_store, name, granted.position, 30)
            ask = {"model": "pryv-echo", "messages": [{"role": "user", "content": "hi"}]}

            async def call(client: httpx.AsyncClient, token: str) -> int:
                headers = {"Authorization": f"Bearer {token}"}
                return (
                    await client.post("/v1/chat/completions", json=ask, headers=headers)
                ).status_code

            assert await call(b, created["key"]) == 200  # B caches the old secret's identity
            rolled = await a.post(
                f"/api/v1/keys/{created['id']}/rotate",
                json={**wallet.fields("rotate", created["id"]), "gracePeriodSeconds": 0},
            )
            assert rolled.status_code == 200, rolled.text
            assert await call(b, created["key"]) == 401
            assert await call(b, rolled.json()["key"]) == 200
            # New limits written through A hold on B's very next request (two calls this minute).
            patched = await a.patch(
                f"/api/v1/keys/{created['id']}",
                json={**wallet.fields("update", created["id"]), "rpm": 1},
            )
            assert patched.status_code == 200, patched.text
            assert await call(b, rolled.json()["key"]) == 429
    finally:
        await first.close()
        await second.close()


async def test_a_new_wallets_first_key_comes_with_welcome_test_credit(tmp_path: Any) -> None:
    """PRYV_WELCOME_CREDIT_USD (the embedded default's $5): one operator-signed test grant per
    wallet, with its first key — a second key adds nothing; live credit is untouched."""
    from bootstrap.platform import open_platform
    from infra.settings import Settings

    settings = Settings(
        data_dir=tmp_path / "pryv", key_pepper=b"p", welcome_credit_micros=5_000_000
    )
    platform = await open_platform(settings)
    try:
        async with running_workers(platform):
            transport = httpx.ASGITransport(app=create_app(platform))
            async with httpx.AsyncClient(transport=transport, base_url="http://pryv.test") as c:
                wallet = SigningWallet.create()
                await create_key(c, wallet, env="test")
                await create_key(c, wallet, env="test")
                balance = (
                    await c.get("/api/v1/billing/balance", headers=wallet.headers("balance"))
                ).json()
        log = await asyncio.to_thread(platform.app.read_log, 0, 10_000)
    finally:
        await platform.close()
    grants = [e for e in log if e.topic == "pryv.CreditGrant.Granted.v1"]
    assert len(grants) == 1
    assert (grants[0].data["reason"], grants[0].data["env"]) == ("welcome", "test")
    assert grants[0].data["evidence"]["kind"] == "operator"
    assert balance["test"]["balanceMicros"] == 5_000_000, balance
    assert balance["balanceMicros"] == 0  # live


async def test_management_calls_are_rate_limited_per_wallet(platform_settings: Any) -> None:
    """PRYV_MANAGEMENT_CALLS_PER_MINUTE: beyond it a wallet's signed calls get 429 with
    Retry-After (no key is created), while another wallet is unaffected."""
    import dataclasses

    from bootstrap.platform import open_platform

    settings = dataclasses.replace(platform_settings, management_calls_per_minute=3)
    platform = await open_platform(settings)
    try:
        async with running_workers(platform, seal=False):
            transport = httpx.ASGITransport(app=create_app(platform))
            async with httpx.AsyncClient(transport=transport, base_url="http://pryv.test") as c:
                busy, other = SigningWallet.create(), SigningWallet.create()
                statuses = []
                for _ in range(7):  # 3 a window: a 429 comes by the 7th even across a minute
                    answer = await c.post("/api/v1/keys", json=busy.fields("create"))
                    statuses.append(answer.status_code)
                    if answer.status_code != 201:
                        break
                assert statuses[-1] == 429 and 3 <= statuses.count(201) <= 6, statuses
                assert answer.json()["error"]["code"] == "rate_limit_exceeded"
                assert 1 <= int(answer.headers["Retry-After"]) <= 60
                assert (
                    await c.post("/api/v1/keys", json=other.fields("create"))
                ).status_code == 201
        log = await asyncio.to_thread(platform.app.read_log, 0, 10_000)
        created = sum(e.topic == "pryv.ApiKey.Created.v1" for e in log)
        assert created == statuses.count(201) + 1  # the refused calls created nothing
    finally:
        await platform.close()


async def test_usage_report_by_day_key_and_model_with_csv(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    """GET /api/v1/usage (action=usage): rows per day, env, key and model from the usage
    projection, filtered, totalled, and as CSV; bad periods are 400."""
    wallet = SigningWallet.create()
    first = await create_key(client, wallet, env="test", name="first")
    second = await create_key(client, wallet, env="test", name="second")
    position: int | None = await fund(platform, wallet, f"{first['id']}-usage")
    ask = {"model": "pryv-echo", "messages": [{"role": "user", "content": "hi there"}]}
    for token in (first["key"], first["key"], second["key"]):
        assert position is not None
        for name in PROJECTIONS:
            assert await wait_until_applied(platform.read_store, name, position, 30)
        answer = await client.post(
            "/v1/chat/completions", json=ask, headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 200, answer.text
        position = await asyncio.to_thread(platform.app.max_position)
    for name in PROJECTIONS:
        assert await wait_until_applied(platform.read_store, name, position, 30)

    async def report(**params: str) -> httpx.Response:
        return await client.get("/api/v1/usage", params=params, headers=wallet.headers("usage"))

    # Settlements are recorded just after each answer: wait until all three are projected.
    deadline = asyncio.get_running_loop().time() + 60
    while (doc := (await report()).json())["totals"]["requests"] < 3:
        assert asyncio.get_running_loop().time() < deadline, doc
        await asyncio.sleep(0.5)  # each look is a signed call: stay under the per-wallet limit
    today = datetime.now(UTC).date().isoformat()
    rows = {(r["keyName"], r["model"]): r for r in doc["data"]}
    assert set(rows) == {("first", "pryv-echo"), ("second", "pryv-echo")}
    assert (
        rows[("first", "pryv-echo")]["requests"] == 2
        and rows[("first", "pryv-echo")]["date"] == today
    )
    assert doc["totals"]["requests"] == 3
    assert doc["totals"]["spendMicros"] == sum(r["spendMicros"] for r in doc["data"]) > 0
    only_second = (await report(keyId=second["id"])).json()["data"]
    assert [r["keyName"] for r in only_second] == ["second"]
    assert (await report(model="other")).json()["data"] == []
    assert (await report(env="live")).json()["data"] == []
    csv_text = (await report(format="csv")).text.splitlines()
    assert csv_text[0] == "date,env,key_id,key_name,model,requests,tokens_in,tokens_out,spend_usd"
    assert any(
        line.startswith(f"{today},test,{first['id']},first,pryv-echo,2,") for line in csv_text
    )
    assert len(csv_text) == 3
    for bad in (
        {"from": "yesterday"},
        {"from": "2026-01-02", "to": "2026-01-01"},
        {"from": "2020-01-01"},
    ):
        answer = await report(**bad)
        assert answer.status_code == 400, (bad, answer.text)


async def test_activity_lists_key_actions_with_their_key_and_authority(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    wallet = SigningWallet.create()
    key_id = (await create_key(client, wallet, name="audited"))["id"]
    patched = await client.patch(
        f"/api/v1/keys/{key_id}", json={**wallet.fields("update", key_id), "rpm": 9}
    )
    assert patched.status_code == 200
    rolled = await client.post(
        f"/api/v1/keys/{key_id}/rotate",
        json={**wallet.fields("rotate", key_id), "gracePeriodSeconds": 0},
    )
    assert rolled.status_code == 200
    revoked = await client.request(
        "DELETE", f"/api/v1/keys/{key_id}", json=wallet.fields("revoke", key_id)
    )
    assert revoked.status_code == 200
    position = await asyncio.to_thread(platform.app.max_position)
    for name in PROJECTIONS:
        assert await wait_until_applied(platform.read_store, name, position, 30)
    page = (await client.get("/api/v1/activity", headers=wallet.headers("activity"))).json()
    entries = page["data"]
    assert [e["action"] for e in entries] == [
        "key.revoked",
        "key.rolled",
        "key.updated",
        "key.created",
    ]
    assert all(e["keyId"] == key_id and e["by"] == "wallet" for e in entries)
    assert entries[2]["rpm"] == 9 and entries[3]["name"] == "audited"
    first = (
        await client.get("/api/v1/activity?limit=2", headers=wallet.headers("activity"))
    ).json()
    assert first["hasMore"] and len(first["data"]) == 2


async def test_settings_keep_a_low_balance_alert(client: httpx.AsyncClient) -> None:
    wallet = SigningWallet.create()
    saved = await client.put(
        "/api/v1/settings", json={**wallet.fields("settings"), "alerts": {"lowBalanceUsd": "5"}}
    )
    assert saved.status_code == 200, saved.text
    read = (await client.get("/api/v1/settings", headers=wallet.headers("settings"))).json()
    assert read["alerts"] == {"lowBalanceUsd": "5", "webhookUrl": None}
    assert read["consent"] == {"analytics": False, "marketing": False}  # other sections kept
    negative = await client.put(
        "/api/v1/settings", json={**wallet.fields("settings"), "alerts": {"lowBalanceUsd": "-1"}}
    )
    assert negative.status_code == 400
