"""Authorization evidence, over both deployments: every money and key event says who allowed
it (wallet signature, operator key, Stripe event), `pryv audit verify` re-checks it offline, and
the sealer refuses to seal an event an insider wrote without valid evidence."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.app import create_app
from audit.sealer import Sealer, opened_sealer
from bootstrap.platform import Platform
from cli.audit import run_verify
from domain import ids, topics
from domain.aggregates import ApiKey, CreditGrant
from domain.evidence import wallet_signed
from infra.operator_key import OperatorSigner
from tests.evidence import OPERATOR, stripe
from tests.holds import place_hold
from tests.integration.test_audit import (
    ROOT,
    cli_env,
    delete_checkpoint_stream,
    delete_event,
    first_nid,
)
from tests.wallets import SigningWallet
from workers.embedded import running_workers

OPERATOR_TOPICS = (
    topics.KEY_CREATED,
    topics.KEY_LIMITS_CHANGED,
    topics.KEY_ROLLED,
    topics.KEY_REVOKED,
    topics.GRANT_GRANTED,
)
STRANGER = OperatorSigner("0x" + "5e" * 32)  # a key that is not the operator's


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(platform)
    async with running_workers(platform, seal=False):  # the tests seal when they choose
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://pryv.test") as c:
            yield c


@pytest.fixture
async def cleanup_checkpoints(platform: Platform) -> AsyncIterator[None]:
    yield
    await delete_checkpoint_stream(platform.settings)


async def seal_all(platform: Platform) -> Sealer:
    """One pass of the production sealer (its evidence gate included), as `seal --once`,
    with the operator's address pinned as PRYV_OPERATOR_ADDRESS would."""
    pinned = dataclasses.replace(platform.settings, operator_address=OPERATOR.address)
    async with opened_sealer(platform.app, pinned, every_events=5, every_seconds=3600) as sealer:
        await sealer.seal_pending(force=True)
        return sealer


async def wallet_history(client: httpx.AsyncClient, wallet: SigningWallet) -> str:
    """Create, change and revoke a key and change settings, all wallet-signed over HTTP."""
    created = await client.post(
        "/api/v1/keys", json={**wallet.fields("create"), "name": "signed", "env": "live"}
    )
    assert created.status_code == 201, created.text
    key_id = str(created.json()["id"])
    patched = await client.patch(
        f"/api/v1/keys/{key_id}", json={**wallet.fields("update", key_id), "rpm": 7}
    )
    assert patched.status_code == 200, patched.text
    settings = await client.put(
        "/api/v1/settings",
        json={**wallet.fields("settings"), "privacy": {"mode": "pseudonymize"}},
    )
    assert settings.status_code == 200, settings.text
    revoked = await client.request(
        "DELETE", f"/api/v1/keys/{key_id}", json=wallet.fields("revoke", key_id)
    )
    assert revoked.status_code == 200, revoked.text
    return key_id


def operator_history(platform: Platform, wallet: str, key_id: str) -> None:
    app = platform.app
    app.grant_credits(
        wallet=wallet,
        env="test",
        amount_micros=1_000_000,
        reason="support",
        granted_by="ops",
        grant_ref=f"g-{key_id}",
        authorization=OPERATOR,
    )
    app.record_purchase(
        source_id=f"cs_{key_id}", wallet=wallet, usd_micros=5_000_000, evidence=stripe("evt_9")
    )


def grant_fields(wallet: str, amount: int = 99_000_000) -> dict[str, Any]:
    return dict(
        grant_ref=f"forged-{uuid.uuid4()}",
        account_id=str(ids.account_id(wallet)),
        wallet=wallet,
        env="live",
        amount_micros=amount,
        reason="support",
        granted_by="operator",
    )


def forged_grant(wallet: str, evidence: dict[str, str] | None) -> CreditGrant:
    return CreditGrant(**grant_fields(wallet), evidence=evidence)


async def test_every_door_records_evidence_that_verify_re_checks(
    platform: Platform, client: httpx.AsyncClient, cleanup_checkpoints: None
) -> None:
    wallet = SigningWallet.create()
    key_id = await wallet_history(client, wallet)
    await asyncio.to_thread(operator_history, platform, wallet.address.lower(), key_id)

    events = platform.app.read_log(0, 10_000)
    created = next(e for e in events if e.topic == topics.KEY_CREATED)
    assert created.data["evidence"]["kind"] == "wallet"
    assert "action=create" in created.data["evidence"]["message"]
    grant = next(e for e in events if e.topic == topics.GRANT_GRANTED)
    assert grant.data["evidence"]["operator"] == OPERATOR.address
    purchase = next(e for e in events if e.topic == topics.PURCHASE_COMPLETED)
    assert purchase.data["evidence"] == {"kind": "stripe", "event": "evt_9"}

    sealer = await seal_all(platform)
    assert sealer.refused is None and sealer.tree_size == len(events)
    report = await run_verify(platform.settings, operator=OPERATOR.address)
    assert report.ok, report.render()
    assert report.evidence_checked == 6  # created, changed, settings, revoked, grant, purchase
    assert report.operators == (OPERATOR.address,)


async def test_a_grant_inserted_without_evidence_is_never_sealed_and_fails_verify(
    platform: Platform, cleanup_checkpoints: None
) -> None:
    wallet = "0x" + "c1" * 20
    await asyncio.to_thread(operator_history, platform, wallet, "k1")
    sealed = await seal_all(platform)
    assert sealed.refused is None
    # An insider writes straight to the store (the library's own save: a well-formed event).
    platform.app.save(forged_grant(wallet, None))
    operator_history(platform, wallet, "k2")  # legitimate events after it wait behind it

    sealer = await seal_all(platform)
    forged_nid = first_nid(platform, topics.GRANT_GRANTED, skip=1)
    assert sealer.refused is not None and sealer.refused[0] == forged_nid
    assert "no authorization evidence" in sealer.refused[1]
    assert sealer.position == forged_nid - 1  # nothing at or after it was sealed

    report = await run_verify(platform.settings, operator=OPERATOR.address)
    assert not report.ok and report.problem is not None
    assert report.problem.kind == "evidence" and report.problem.notification_id == forged_nid
    assert "no authorization evidence" in report.problem.message

    # Removing the unsealed forgery is no tampering: sealing resumes and the log verifies.
    delete_event(platform.settings, forged_nid)
    resumed = await seal_all(platform)
    assert resumed.refused is None
    assert (await run_verify(platform.settings, operator=OPERATOR.address)).ok


@pytest.mark.parametrize(
    ("forgery", "expected"),
    [
        ("stranger", "not an operator key"),
        ("edited", "does not cover this event"),
        ("wallet", "needs operator or payment evidence"),
        ("copied", "does not cover this event"),
    ],
)
async def test_forged_operator_evidence_is_refused_by_sealer_and_verify(
    platform: Platform, cleanup_checkpoints: None, forgery: str, expected: str
) -> None:
    wallet = "0x" + "c2" * 20
    await asyncio.to_thread(operator_history, platform, wallet, "k3")
    fields = grant_fields(wallet)
    aggregate_id = CreditGrant.create_id(fields["grant_ref"])
    if forgery == "stranger":  # signed, but by a key that is not the operator's
        evidence = STRANGER.evidence("CreditGrant.Granted", aggregate_id, 1, fields)
    elif forgery == "edited":  # the operator signed a grant of 1 micro-USD, not 99 USD
        evidence = OPERATOR.evidence(
            "CreditGrant.Granted", aggregate_id, 1, {**fields, "amount_micros": 1}
        )
    elif forgery == "wallet":  # a wallet's signature is no operator's
        signed = SigningWallet.create().fields("create")
        evidence = wallet_signed(wallet, signed["message"], signed["signature"]).as_dict()
    else:  # the operator's real signature of the earlier grant, copied onto a new one
        earlier = next(e for e in platform.app.read_log(0, 1000) if e.topic == topics.GRANT_GRANTED)
        evidence = dict(earlier.data["evidence"])
    platform.app.save(CreditGrant(**fields, evidence=evidence))

    sealer = await seal_all(platform)
    assert sealer.refused is not None and expected in sealer.refused[1], sealer.refused
    report = await run_verify(platform.settings, operator=OPERATOR.address)
    assert not report.ok and report.problem is not None
    assert report.problem.kind == "evidence"
    assert expected in report.problem.message, report.problem.message


async def test_wallet_evidence_binds_signer_key_and_nonce(
    platform: Platform, client: httpx.AsyncClient, cleanup_checkpoints: None
) -> None:
    """A revocation signed by another wallet, a wallet message replayed onto a second
    event, and a hold on a key the log never created are each refused."""
    owner, other = SigningWallet.create(), SigningWallet.create()
    created = await client.post(
        "/api/v1/keys", json={**owner.fields("create"), "name": "k", "env": "live"}
    )
    assert created.status_code == 201, created.text
    key_id = str(created.json()["id"])
    patched = await client.patch(
        f"/api/v1/keys/{key_id}", json={**owner.fields("update", key_id), "rpm": 9}
    )
    assert patched.status_code == 200, patched.text
    assert (await seal_all(platform)).refused is None
    used = next(
        e for e in platform.app.read_log(0, 1000) if e.topic == topics.KEY_LIMITS_CHANGED
    ).data["evidence"]

    cases: list[tuple[Any, str]] = []
    stranger = other.fields("revoke", key_id)
    cases.append(
        (
            wallet_signed(other.address, stranger["message"], stranger["signature"]).as_dict(),
            "but the event acts for",
        )
    )
    cases.append((dict(used), "wrong action"))  # an update's message onto a revocation
    for evidence, expected in cases:
        key = platform.app.repository.get(ApiKey.create_id(key_id))
        key.revoke("insider", evidence)
        platform.app.save(key)
        sealer = await seal_all(platform)
        assert sealer.refused is not None
        if expected != "wrong action":
            assert expected in sealer.refused[1], sealer.refused
        else:
            assert "action=update, not action=revoke" in sealer.refused[1], sealer.refused
        report = await run_verify(platform.settings, operator=OPERATOR.address)
        assert report.problem is not None and report.problem.kind == "evidence"
        delete_event(platform.settings, sealer.refused[0])

    # The same update message twice: the second use is a replay.
    key = platform.app.repository.get(ApiKey.create_id(key_id))
    key.change_limits(
        name="k",
        models=[],
        rpm=3,
        tpm=None,
        monthly_budget_micros=None,
        expires_at=None,
        evidence=dict(used),
    )
    platform.app.save(key)
    sealer = await seal_all(platform)
    assert sealer.refused is not None and "already authorized" in sealer.refused[1]
    delete_event(platform.settings, sealer.refused[0])

    # A hold on a key nobody created.
    place_hold(
        platform.app,
        key_id="nosuchkey0000000",
        request_id="r1",
        account_id=str(ids.account_id(owner.address)),
        env="live",
        amount_micros=1,
        model="m",
        expires_at=datetime.now(UTC) + timedelta(minutes=5),
    )
    sealer = await seal_all(platform)
    assert sealer.refused is not None and "never created" in sealer.refused[1]
    report = await run_verify(platform.settings, operator=OPERATOR.address)
    assert report.problem is not None and "never created" in report.problem.message


def pryv(settings: Any, *args: str, operator_key: str | None) -> dict[str, Any]:
    env = cli_env(settings)
    env.pop("PRYV_OPERATOR_KEY", None)
    if operator_key:
        env["PRYV_OPERATOR_KEY"] = operator_key
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


async def test_cli_operator_actions_are_signed_by_the_operator_key(
    platform: Platform, cleanup_checkpoints: None
) -> None:
    """`pryv keys create|update|rotate|revoke` and `pryv credits grant` carry the operator
    key's signature (PRYV_OPERATOR_KEY), name it, and verify accepts them only with that key
    pinned; update and rotate wait until the key index has them."""
    settings = platform.settings
    key = "0x" + "0e" * 32  # tests.evidence.OPERATOR's key
    wallet = "0x" + "c3" * 20
    created = pryv(settings, "keys", "create", "--wallet", wallet, operator_key=key)
    assert created["operator"] == OPERATOR.address
    async with running_workers(platform, seal=False):  # the projector the CLI waits for
        updated = await asyncio.to_thread(
            pryv,
            settings,
            "keys",
            "update",
            created["id"],
            "--wallet",
            wallet,
            "--rpm",
            "5",
            "--monthly-budget-usd",
            "none",
            operator_key=key,
        )
        assert updated["unchanged"] is False and updated["applied"] is True
        rotated = await asyncio.to_thread(
            pryv,
            settings,
            "keys",
            "rotate",
            created["id"],
            "--wallet",
            wallet,
            "--grace-seconds",
            "0",
            operator_key=key,
        )
        assert rotated["applied"] is True and rotated["key"] != created["key"]
        assert rotated["key"].startswith(created["key"][:26])  # same env and key id
    pryv(settings, "keys", "revoke", created["id"], "--wallet", wallet, operator_key=key)
    granted = pryv(
        settings,
        "credits",
        "grant",
        "--wallet",
        wallet,
        "--usd",
        "3",
        "--reason",
        "support",
        operator_key=key,
    )
    assert granted["granted"] and granted["operator"] == OPERATOR.address
    kinds = {
        e.topic: e.data["evidence"]["kind"]
        for e in platform.app.read_log(0, 1000)
        if e.topic in OPERATOR_TOPICS
    }
    assert kinds == dict.fromkeys(OPERATOR_TOPICS, "operator")
    assert (await seal_all(platform)).refused is None
    report = await run_verify(settings, operator=OPERATOR.address)
    assert report.ok and report.evidence_checked == 5, report.render()
    pinned_elsewhere = await run_verify(settings, operator=STRANGER.address)
    assert pinned_elsewhere.problem is not None
    assert "not an operator key" in pinned_elsewhere.problem.message


def test_operator_actions_on_a_shared_database_need_a_named_key(
    services_settings: Any,
) -> None:
    """No per-machine key file on production backends: an unnamed operator is refused."""
    env = cli_env(services_settings)
    env.pop("PRYV_OPERATOR_KEY", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "credits",
            "grant",
            "--wallet",
            "0x" + "c4" * 20,
            "--usd",
            "1",
            "--reason",
            "x",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "PRYV_OPERATOR_KEY" in done.stderr and "Traceback" not in done.stderr
