"""Billing against the real stripe SDK and a local fake of Stripe's API, over both deployments:
checkout, signed webhooks delivered many times, refunds and disputes, the return pages, and
finance reconciliation."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.finance import build_report
from domain import ids, topics
from domain.reconciliation import Kind, Status
from infra.settings import Settings
from projections import balance, ledger
from tests.evidence import stripe
from tests.fakes.stripe_api import FakeStripe, running_fake_stripe, webhook_request
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, running_gateway
from tests.integration.test_relay_crash import relay_env
from tests.wallets import SigningWallet

SECRET = "whsec_test_pryv"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[FakeStripe]:
    with running_fake_stripe() as fake:
        yield fake


def billing_settings(settings: Settings, stripe_api: FakeStripe) -> Settings:
    return dataclasses.replace(
        settings,
        stripe_secret_key="sk_test_pryv",
        stripe_webhook_secret=SECRET,
        stripe_api_base=stripe_api.url,
        public_url="https://pryv.test",
    )


@pytest.fixture
async def gateway(
    platform_settings: Settings, stripe_api: FakeStripe, upstream: FakeUpstream
) -> AsyncIterator[Gateway]:
    async with running_gateway(billing_settings(platform_settings, stripe_api), upstream) as gw:
        yield gw


async def deliver(
    gateway: Gateway,
    event: dict[str, Any],
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    body: bytes | None = None,
) -> httpx.Response:
    raw, headers = webhook_request(event, secret, timestamp)
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        return await http.post("/api/v1/billing/webhook", content=body or raw, headers=headers)


async def checkout(gateway: Gateway, wallet: SigningWallet, **body: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        return await http.post(
            "/api/v1/billing/checkout", json={**wallet.fields("checkout"), **body}
        )


async def live_balance(gateway: Gateway, wallet: SigningWallet) -> balance.Balance:
    await gateway.settled()
    account = str(ids.account_id(wallet.address))
    return await balance.read_balance(gateway.platform.read_store, account, "live")


async def paid_checkout(
    gateway: Gateway, stripe_api: FakeStripe, wallet: SigningWallet, **body: Any
) -> dict[str, Any]:
    created = await checkout(gateway, wallet, **body)
    assert created.status_code == 200, created.text
    event = stripe_api.complete_session(created.json()["id"])
    assert (await deliver(gateway, event)).json()["result"] == "recorded"
    return event


async def test_credit_packs_are_public(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        packs = (await http.get("/api/v1/billing/credit-packs")).json()
    assert [p["id"] for p in packs["data"]] == ["pack_10", "pack_50", "pack_200"]
    assert packs["data"][1] == {
        "id": "pack_50",
        "usd": "50.00",
        "credits": "52.000000",
        "label": "Builder (+4% credit)",
    }
    assert packs["customAmount"] == {"minUsd": "5.00", "maxUsd": "10000.00"}
    assert packs["checkoutAvailable"] is True


async def test_checkout_creates_one_session_with_the_account(
    gateway: Gateway, stripe_api: FakeStripe
) -> None:
    wallet = SigningWallet.create()
    before = stripe_api.post_count("/v1/checkout/sessions")
    response = await checkout(gateway, wallet, usdAmount="12.50")
    assert response.status_code == 200, response.text
    session = response.json()
    assert session["url"].startswith(stripe_api.url) and session["usdAmount"] == "12.50"
    stored = stripe_api.sessions[session["id"]]
    assert stored["amount_total"] == 1250 and stored["mode"] == "payment"
    assert stored["metadata"]["pryv_wallet"] == wallet.address.lower()
    assert stored["metadata"]["pryv_account_id"] == str(ids.account_id(wallet.address))
    assert stored["success_url"].startswith("https://pryv.test/api/v1/billing/success")
    assert stripe_api.post_count("/v1/checkout/sessions") == before + 1  # never auto-retried
    idempotency = [
        r["headers"].get("idempotency-key")
        for r in stripe_api.requests
        if r["path"] == "/v1/checkout/sessions"
    ][-1]
    assert idempotency and idempotency.startswith("pryv-checkout-")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"usdAmount": "4.99"}, "usdAmount"),
        ({"usdAmount": "10.001"}, "usdAmount"),
        ({"usdAmount": "20000"}, "usdAmount"),
        ({"packId": "pack_nope"}, "packId"),
        ({"usdAmount": "10", "packId": "pack_10"}, "packId"),
        ({}, "usdAmount"),
    ],
)
async def test_bad_checkout_amounts_are_400(
    gateway: Gateway, body: dict[str, Any], param: str
) -> None:
    response = await checkout(gateway, SigningWallet.create(), **body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


async def test_checkout_needs_its_own_signed_action(gateway: Gateway) -> None:
    wallet = SigningWallet.create()
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        response = await http.post(
            "/api/v1/billing/checkout", json={**wallet.fields("create"), "usdAmount": "10"}
        )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "ACTION_MISMATCH"


async def test_same_webhook_ten_times_and_concurrently_credits_once(
    gateway: Gateway, stripe_api: FakeStripe
) -> None:
    wallet = SigningWallet.create()
    session = (await checkout(gateway, wallet, packId="pack_50")).json()
    event = stripe_api.complete_session(session["id"])
    sequential = [await deliver(gateway, event) for _ in range(10)]
    concurrent = await asyncio.gather(*(deliver(gateway, event) for _ in range(10)))
    results = [r.json()["result"] for r in sequential + list(concurrent)]
    assert all(r.status_code == 200 for r in sequential + list(concurrent))
    assert results.count("recorded") == 1 and results.count("duplicate") == 19
    got = await live_balance(gateway, wallet)
    assert got.credited_micros == 52_000_000  # the pack's bonus credit, once
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 100_000)
    assert [e.topic for e in log].count(topics.PURCHASE_COMPLETED) == 1
    entries = await ledger.ledger_page(
        gateway.platform.read_store, str(ids.account_id(wallet.address)), before=None, limit=10
    )
    [purchase] = [e for e in entries if e["type"] == "purchase"]
    assert purchase["source_id"] == session["id"] and purchase["usd_micros"] == 50_000_000


async def test_async_payment_credits_only_when_it_succeeds(
    gateway: Gateway, stripe_api: FakeStripe
) -> None:
    wallet = SigningWallet.create()
    session = (await checkout(gateway, wallet, usdAmount="20")).json()
    pending, succeeded = stripe_api.complete_session(session["id"], async_payment=True)
    assert (await deliver(gateway, pending)).json()["result"].startswith("ignored")
    assert (await live_balance(gateway, wallet)).credited_micros == 0
    assert (await deliver(gateway, succeeded)).json()["result"] == "recorded"
    assert (await live_balance(gateway, wallet)).credited_micros == 20_000_000


async def test_forged_or_stale_webhooks_are_400_and_credit_nothing(
    gateway: Gateway, stripe_api: FakeStripe
) -> None:
    wallet = SigningWallet.create()
    session = (await checkout(gateway, wallet, usdAmount="10")).json()
    event = stripe_api.complete_session(session["id"])
    raw, _ = webhook_request(event, SECRET)
    tampered = raw.replace(b'"amount_total": 1000', b'"amount_total": 9999999')
    assert tampered != raw
    attempts = [
        await deliver(gateway, event, body=tampered),  # signed bytes != sent bytes
        await deliver(gateway, event, secret="whsec_wrong"),
        await deliver(gateway, event, timestamp=int(time.time()) - 301),
    ]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        attempts.append(await http.post("/api/v1/billing/webhook", content=raw))  # unsigned
    for response in attempts:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_signature"
    assert (await live_balance(gateway, wallet)).credited_micros == 0
    assert (await deliver(gateway, event)).json()["result"] == "recorded"  # the real one works


async def test_unknown_event_types_are_acknowledged_and_ignored(gateway: Gateway) -> None:
    response = await deliver(
        gateway,
        {
            "id": "evt_x",
            "object": "event",
            "type": "customer.created",
            "data": {"object": {"id": "cus_1"}},
        },
    )
    assert response.status_code == 200 and response.json()["result"].startswith("ignored")


async def test_refund_after_partial_spend_goes_negative_and_blocks_spending(
    gateway: Gateway, stripe_api: FakeStripe
) -> None:
    wallet = SigningWallet.create()
    event = await paid_checkout(gateway, stripe_api, wallet, usdAmount="10")
    key = await gateway.funded_key(env="live", usd="0", wallet=wallet.address)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as http:
        spent = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "model": "fake-live",
                "max_tokens": 50,
                "messages": [{"role": "user", "content": "spend a little"}],
            },
        )
    assert spent.status_code == 200, spent.text
    await gateway.settlements(1)
    after_spend = await live_balance(gateway, wallet)
    assert 0 < after_spend.debited_micros < 10_000_000

    charge_id = stripe_api.payment_intents[event["data"]["object"]["payment_intent"]][
        "latest_charge"
    ]
    partial = stripe_api.refund(charge_id, 400)  # $4 back
    assert (await deliver(gateway, partial)).json()["result"] == "recorded"
    assert (await deliver(gateway, partial)).json()["result"] == "duplicate"
    full = stripe_api.refund(charge_id)  # the remaining $6
    assert (await deliver(gateway, full)).json()["result"] == "recorded"
    assert (await deliver(gateway, partial)).json()["result"] == "duplicate"  # late, older

    got = await live_balance(gateway, wallet)
    # Documented design: reversed credit may take the balance below zero (it was spent).
    assert got.balance_micros == -after_spend.debited_micros
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        blocked = await http.post(
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={"model": "fake-live", "messages": [{"role": "user", "content": "more"}]},
        )
    assert blocked.status_code == 402 and blocked.json()["error"]["code"] == "insufficient_credits"
    entries = await ledger.ledger_page(
        gateway.platform.read_store, str(ids.account_id(wallet.address)), before=None, limit=10
    )
    refunds = [e for e in entries if e["type"] == "refund"]
    assert sorted(e["amount_micros"] for e in refunds) == [-6_000_000, -4_000_000]
    assert all(e["source_id"] == charge_id for e in refunds)


async def test_dispute_takes_the_credit_back_once(gateway: Gateway, stripe_api: FakeStripe) -> None:
    wallet = SigningWallet.create()
    event = await paid_checkout(gateway, stripe_api, wallet, packId="pack_10")
    charge_id = stripe_api.payment_intents[event["data"]["object"]["payment_intent"]][
        "latest_charge"
    ]
    opened = stripe_api.dispute(charge_id)
    assert (await deliver(gateway, opened)).json()["result"] == "recorded"
    assert (await deliver(gateway, opened)).json()["result"] == "duplicate"
    got = await live_balance(gateway, wallet)
    assert (got.credited_micros, got.debited_micros) == (10_000_000, 10_000_000)


def charge_of(stripe_api: FakeStripe, checkout_event: dict[str, Any]) -> str:
    charge: str = stripe_api.payment_intents[checkout_event["data"]["object"]["payment_intent"]][
        "latest_charge"
    ]
    return charge


async def account_entries(gateway: Gateway, wallet: SigningWallet) -> list[dict[str, Any]]:
    await gateway.settled()
    account = str(ids.account_id(wallet.address))
    return await ledger.ledger_page(gateway.platform.read_store, account, before=None, limit=50)


async def test_won_dispute_gives_the_credit_back_once(
    gateway: Gateway, stripe_api: FakeStripe
) -> None:
    wallet = SigningWallet.create()
    event = await paid_checkout(gateway, stripe_api, wallet, packId="pack_10")
    opened = stripe_api.dispute(charge_of(stripe_api, event))
    dispute_id = opened["data"]["object"]["id"]
    assert (await deliver(gateway, opened)).json()["result"] == "recorded"
    assert (await live_balance(gateway, wallet)).balance_micros == 0
    reinstated, closed = stripe_api.win_dispute(dispute_id)
    # Both of Stripe's "won" events, each redelivered, some at once: one reinstatement.
    results = await asyncio.gather(
        *(deliver(gateway, e) for e in (reinstated, closed, reinstated, closed, closed))
    )
    assert sorted(r.json()["result"] for r in results) == ["duplicate"] * 4 + ["recorded"]
    got = await live_balance(gateway, wallet)
    assert (got.credited_micros, got.debited_micros, got.balance_micros) == (
        20_000_000,
        10_000_000,
        10_000_000,
    )
    entries = [e for e in await account_entries(gateway, wallet) if "dispute" in e["type"]]
    assert [(e["type"], e["amount_micros"], e["source_id"]) for e in entries] == [
        ("dispute_reversal", 10_000_000, dispute_id),
        ("dispute", -10_000_000, dispute_id),
    ]


async def test_a_delivery_that_keeps_colliding_is_503_so_stripe_retries(
    gateway: Gateway, stripe_api: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    from commands.results import ConcurrentUpdate

    wallet = SigningWallet.create()
    event = await paid_checkout(gateway, stripe_api, wallet, packId="pack_10")
    refunded = stripe_api.refund(charge_of(stripe_api, event))

    def collide(**_fields: object) -> None:
        raise ConcurrentUpdate("refund kept colliding")

    monkeypatch.setattr(gateway.platform.app, "record_refund", collide)
    busy = await deliver(gateway, refunded)
    assert busy.status_code == 503 and busy.json()["error"]["code"] == "billing_busy"
    assert busy.headers["retry-after"] == "1"
    monkeypatch.undo()
    assert (await deliver(gateway, refunded)).json()["result"] == "recorded"  # the redelivery
    assert (await live_balance(gateway, wallet)).balance_micros == 0


async def test_lost_dispute_keeps_the_debit(gateway: Gateway, stripe_api: FakeStripe) -> None:
    wallet = SigningWallet.create()
    event = await paid_checkout(gateway, stripe_api, wallet, packId="pack_10")
    opened = stripe_api.dispute(charge_of(stripe_api, event))
    assert (await deliver(gateway, opened)).json()["result"] == "recorded"
    lost = stripe_api.lose_dispute(opened["data"]["object"]["id"])
    assert (await deliver(gateway, lost)).json()["result"] == "ignored: dispute closed as lost"
    assert (await live_balance(gateway, wallet)).balance_micros == 0


async def test_dispute_won_before_its_opening_arrived_nets_to_zero(
    gateway: Gateway, stripe_api: FakeStripe
) -> None:
    wallet = SigningWallet.create()
    event = await paid_checkout(gateway, stripe_api, wallet, packId="pack_10")
    opened = stripe_api.dispute(charge_of(stripe_api, event))  # its webhook is late
    _, closed = stripe_api.win_dispute(opened["data"]["object"]["id"])
    assert (await deliver(gateway, closed)).json()["result"] == "recorded"
    assert (await deliver(gateway, opened)).json()["result"] == "duplicate"
    got = await live_balance(gateway, wallet)
    assert (got.credited_micros, got.debited_micros) == (20_000_000, 10_000_000)
    types = [e["type"] for e in await account_entries(gateway, wallet)]
    assert types.count("dispute") == 1 and types.count("dispute_reversal") == 1


async def test_inquiry_debits_only_once_it_escalates(
    gateway: Gateway, stripe_api: FakeStripe
) -> None:
    wallet = SigningWallet.create()
    event = await paid_checkout(gateway, stripe_api, wallet, packId="pack_10")
    inquiry = stripe_api.dispute(charge_of(stripe_api, event), inquiry=True)
    answer = (await deliver(gateway, inquiry)).json()["result"]
    assert answer == "ignored: an inquiry withdraws no funds"
    assert (await live_balance(gateway, wallet)).balance_micros == 10_000_000
    withdrawn = stripe_api.escalate(inquiry["data"]["object"]["id"])
    assert (await deliver(gateway, withdrawn)).json()["result"] == "recorded"
    assert (await deliver(gateway, withdrawn)).json()["result"] == "duplicate"
    assert (await live_balance(gateway, wallet)).balance_micros == 0


async def test_return_pages(gateway: Gateway, stripe_api: FakeStripe) -> None:
    wallet = SigningWallet.create()
    event = await paid_checkout(gateway, stripe_api, wallet, usdAmount="15")
    session_id = event["data"]["object"]["id"]
    async with httpx.AsyncClient(base_url=gateway.url) as http:
        ok = await http.get("/api/v1/billing/success", params={"session_id": session_id})
        unknown = await http.get("/api/v1/billing/success", params={"session_id": "cs_nope"})
        canceled = await http.get("/api/v1/billing/cancel", params={"session_id": session_id})
    assert ok.status_code == 200 and "text/html" in ok.headers["content-type"]
    assert "Payment received" in ok.text and "$15.00 of credit is on your account" in ok.text
    assert "Payment status unknown" in unknown.text
    assert "Nothing was charged" in canceled.text


async def test_checkout_without_stripe_is_503(
    platform_settings: Settings, upstream: FakeUpstream
) -> None:
    async with running_gateway(platform_settings, upstream) as gateway:
        response = await checkout(gateway, SigningWallet.create(), usdAmount="10")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "billing_not_configured"


async def test_reconcile_passes_clean_and_names_each_planted_mismatch(
    gateway: Gateway, stripe_api: FakeStripe, tmp_path: Path
) -> None:
    wallet = SigningWallet.create()
    first = await paid_checkout(gateway, stripe_api, wallet, usdAmount="10")
    charge = stripe_api.payment_intents[first["data"]["object"]["payment_intent"]]["latest_charge"]
    assert (await deliver(gateway, stripe_api.refund(charge, 300))).status_code == 200
    await gateway.settled()
    mine = {first["data"]["object"]["payment_intent"], charge}

    def ours(report: Any) -> list[tuple[Kind, str, Status]]:
        return sorted(
            (ln.kind, ln.key, ln.status)
            for ln in report.lines
            if ln.key in mine or ln.status is not Status.MATCHED
        )

    clean = await build_report(gateway.platform, None)
    assert [status for _, key, status in ours(clean) if key in mine] == [Status.MATCHED] * 2
    csv_path = tmp_path / "clean.csv"
    stripe_api.export_balance_transactions_csv(csv_path)
    assert all(
        ln.status is Status.MATCHED
        for ln in (await build_report(gateway.platform, csv_path)).lines
        if ln.key in mine
    )

    # 1. paid in Stripe, webhook never arrived -> missing in ledger
    lost = stripe_api.complete_session(
        (await checkout(gateway, wallet, usdAmount="7")).json()["id"]
    )
    lost_pi = lost["data"]["object"]["payment_intent"]
    # 2. credited in our ledger, unknown to Stripe -> missing in Stripe
    await asyncio.to_thread(
        gateway.platform.app.record_purchase,
        evidence=stripe(),
        source_id="cs_ghost",
        wallet=wallet.address,
        usd_micros=5_000_000,
        payment_intent="pi_ghost",
    )
    # 3. Stripe's record of our charge says another amount -> amount mismatch
    [txn] = [
        t
        for t in stripe_api.balance_transactions
        if t["source"] == charge and t["type"] == "charge"
    ]
    stripe_api.drop_balance_transaction(txn["id"])
    stripe_api.plant_balance_transaction(
        type="charge", reporting_category="charge", amount=1100, source=charge
    )
    # 4. refunded in Stripe, webhook lost -> refund amount mismatch for that charge
    stripe_api.refund(charge, 200)
    await gateway.settled()

    for source in (None, "csv"):
        path = None
        if source == "csv":
            path = tmp_path / "planted.csv"
            stripe_api.export_balance_transactions_csv(path)
        report = await build_report(gateway.platform, path)
        statuses = {(ln.kind, ln.key): ln.status for ln in report.lines}
        assert statuses[(Kind.CHARGE, lost_pi)] is Status.MISSING_IN_LEDGER
        assert statuses[(Kind.CHARGE, "pi_ghost")] is Status.MISSING_IN_STRIPE
        assert statuses[(Kind.CHARGE, first["data"]["object"]["payment_intent"])] is (
            Status.AMOUNT_MISMATCH
        )
        assert statuses[(Kind.REFUND, charge)] is Status.AMOUNT_MISMATCH
        assert not report.clean


async def test_reconcile_matches_won_and_lost_disputes(
    gateway: Gateway, stripe_api: FakeStripe, tmp_path: Path
) -> None:
    wallet = SigningWallet.create()
    disputes = []
    for _ in range(2):
        event = await paid_checkout(gateway, stripe_api, wallet, usdAmount="10")
        opened = stripe_api.dispute(charge_of(stripe_api, event), 600)
        assert (await deliver(gateway, opened)).status_code == 200
        disputes.append(opened["data"]["object"]["id"])
    won, lost = disputes
    for reinstated in stripe_api.win_dispute(won):
        assert (await deliver(gateway, reinstated)).status_code == 200
    assert (await deliver(gateway, stripe_api.lose_dispute(lost))).status_code == 200
    await gateway.settled()
    csv_path = tmp_path / "disputes.csv"
    stripe_api.export_balance_transactions_csv(csv_path)
    for path in (None, csv_path):
        report = await build_report(gateway.platform, path)
        lines = {(ln.kind, ln.key): ln for ln in report.lines if ln.key in disputes}
        assert {k: ln.status for k, ln in lines.items()} == {
            (Kind.DISPUTE, won): Status.MATCHED,
            (Kind.DISPUTE_REVERSAL, won): Status.MATCHED,
            (Kind.DISPUTE, lost): Status.MATCHED,
        }
        assert lines[(Kind.DISPUTE_REVERSAL, won)].ledger_usd_micros == 6_000_000
    # A reinstatement Stripe made but whose webhooks never arrived is missing in the ledger.
    event = await paid_checkout(gateway, stripe_api, wallet, usdAmount="10")
    opened = stripe_api.dispute(charge_of(stripe_api, event))
    assert (await deliver(gateway, opened)).status_code == 200
    stripe_api.win_dispute(opened["data"]["object"]["id"])
    await gateway.settled()
    report = await build_report(gateway.platform, None)
    [missing] = [
        ln
        for ln in report.lines
        if ln.key == opened["data"]["object"]["id"] and ln.kind is Kind.DISPUTE_REVERSAL
    ]
    assert missing.status is Status.MISSING_IN_LEDGER and not report.clean


async def test_reconcile_flags_a_projected_balance_that_disagrees_with_postings(
    gateway: Gateway, stripe_api: FakeStripe
) -> None:
    if not gateway.platform.settings.redis_url:
        pytest.skip("embedded read models are rebuilt from the log by the check itself")
    from projections.ops import IncrField

    wallet = SigningWallet.create()
    await paid_checkout(gateway, stripe_api, wallet, usdAmount="10")
    await gateway.settled()
    account = str(ids.account_id(wallet.address))
    await gateway.platform.read_store.apply_ops_atomically(
        [IncrField(balance.balance_key(account, "live"), "credited", 1)]
    )
    report = await build_report(gateway.platform, None)
    [check] = [a for a in report.accounts if a.account_id == account]
    assert (check.projected_micros, check.postings_micros, check.ok) == (
        10_000_001,
        10_000_000,
        False,
    )


def test_reconcile_cli_exit_codes(tmp_path: Path) -> None:
    """`pryv finance reconcile --stripe-csv …` exits 0 on a clean history, 1 on a mismatch,
    3 when there is no store to reconcile."""
    settings = Settings(data_dir=tmp_path / "pryv", key_pepper=b"p")
    env = {
        **relay_env(settings),
        "PRYV_DATABASE_URL": "",
        "PRYV_REDIS_URL": "",
        "PRYV_NATS_URL": "",
    }
    header = (
        "balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category,"
        "source_id,description,charge_id,payment_intent_id,dispute_id,refund_id\n"
    )
    empty = tmp_path / "empty.csv"
    empty.write_text(header)
    run = [sys.executable, "-m", "cli.main", "finance", "reconcile", "--json", "--stripe-csv"]
    absent = subprocess.run([*run, str(empty)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert absent.returncode == 3 and "no Pryv store" in absent.stderr  # could not run
    assert not os.path.exists(settings.data_dir)  # and created nothing
    from bootstrap.platform import open_application

    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "key_pepper").write_text(b"p".hex())
    open_application(settings).close()
    clean = subprocess.run([*run, str(empty)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["clean"] is True
    stray = tmp_path / "stray.csv"
    stray.write_text(
        header + "txn_1,2026-01-01 00:00:00,usd,10.00,0.00,10.00,charge,ch_1,,ch_1,pi_1,,\n"
    )
    dirty = subprocess.run([*run, str(stray)], env=env, cwd=ROOT, capture_output=True, text=True)
    assert dirty.returncode == 1
    assert json.loads(dirty.stdout)["counts"]["missing_in_ledger"] == 1
    assert os.path.exists(settings.data_dir / "events.sqlite")
    # A period that leaves the stray charge out is clean; one that keeps it is not.
    later = [*run, str(stray), "--from", "2026-02-01"]
    assert subprocess.run(later, env=env, cwd=ROOT, capture_output=True).returncode == 0
    january = [*run[:-1], "--format", "csv", "--stripe-csv", str(stray), "--to", "2026-02-01"]
    in_january = subprocess.run(january, env=env, cwd=ROOT, capture_output=True, text=True)
    assert in_january.returncode == 1, in_january.stderr
    header_row, first = in_january.stdout.splitlines()[:2]
    assert header_row.startswith("section,kind,key,wallet,at,currency,ledger_usd,stripe_usd")
    assert first == (
        "payment,charge,pi_1,,2026-01-01T00:00:00+00:00,usd,,10.000000,0.000000,10.000000,"
        "missing_in_ledger,txn_1"
    )
    bad = subprocess.run(
        [*run, str(stray), "--from", "yesterday"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert bad.returncode == 2 and "--from must be an ISO-8601" in bad.stderr


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ({"currency": "jpy"}, "currency 'jpy' is not 'usd'"),
        ({"metadata": {"pryv_wallet": "not-a-wallet"}}, "wallet metadata is not a 0x address"),
    ],
)
async def test_a_signed_session_in_another_currency_or_without_a_wallet_credits_nothing(
    gateway: Gateway, stripe_api: FakeStripe, tamper: dict[str, Any], reason: str
) -> None:
    """Stripe signs what it was given: ¥1000 is not $10, and 'not-a-wallet' is nobody's
    account. Both are recorded as rejected payments (for finance to refund), never credited."""
    wallet = SigningWallet.create()
    session = (await checkout(gateway, wallet, usdAmount="10")).json()
    event = stripe_api.complete_session(session["id"])
    obj = event["data"]["object"]
    for name, value in tamper.items():
        obj[name] = {**obj[name], **value} if isinstance(value, dict) else value
    answers = [await deliver(gateway, event) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json()["result"] == f"rejected: {reason}"
    assert (await live_balance(gateway, wallet)).credited_micros == 0
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 100_000)
    assert topics.PURCHASE_COMPLETED not in [e.topic for e in log]
    [rejected] = [e for e in log if e.topic == topics.PAYMENT_REJECTED]  # once, not twice
    assert rejected.data["source_id"] == session["id"] and rejected.data["reason"] == reason
    report = await build_report(gateway.platform, None)
    assert [r.source_id for r in report.rejected_payments] == [session["id"]]
    [line] = [ln for ln in report.lines if ln.key == obj["payment_intent"]]
    assert line.status is Status.REJECTED and not report.clean  # to be refunded


async def test_reconcile_a_period_with_stripe_fees_net_and_currency(
    gateway: Gateway, stripe_api: FakeStripe, tmp_path: Path
) -> None:
    """`--from/--to` report the lines whose earliest record falls in the period (matched over
    all history first); Stripe's fee and net are carried per line and totalled; a Stripe
    charge in a currency Pryv never credits is a currency mismatch, not a dollar amount."""
    from datetime import UTC, datetime

    wallet = SigningWallet.create()
    real_clock = stripe_api.clock
    # Paid at 23:59:50 on 30 November, its webhook recorded in December: one November line.
    november = int(datetime(2026, 11, 30, 23, 59, 50, tzinfo=UTC).timestamp())
    stripe_api.clock = lambda: november
    try:
        old = await paid_checkout(gateway, stripe_api, wallet, usdAmount="10")
    finally:
        stripe_api.clock = real_clock
    new = await paid_checkout(gateway, stripe_api, wallet, usdAmount="20")
    new_charge = charge_of(stripe_api, new)
    [txn] = [
        t
        for t in stripe_api.balance_transactions
        if t["source"] == new_charge and t["type"] == "charge"
    ]
    stripe_api.drop_balance_transaction(txn["id"])  # the same charge, with Stripe's fee on it
    stripe_api.plant_balance_transaction(
        type="charge", reporting_category="charge", amount=2000, fee=88, source=new_charge
    )
    foreign_charge = stripe_api.plant_balance_transaction(
        type="charge", reporting_category="charge", amount=5000, currency="eur", source=None
    )
    await gateway.settled()
    old_pi = old["data"]["object"]["payment_intent"]
    new_pi = new["data"]["object"]["payment_intent"]
    december = datetime(2026, 12, 1, tzinfo=UTC)
    csv_path = tmp_path / "period.csv"
    stripe_api.export_balance_transactions_csv(csv_path)

    for path in (None, csv_path):
        after = await build_report(gateway.platform, path, start=december)
        keys = {ln.key: ln for ln in after.lines}
        assert new_pi in keys and old_pi not in keys
        line = keys[new_pi]
        assert line.status is Status.MATCHED
        assert (line.stripe_fee_usd_micros, line.stripe_net_usd_micros) == (880_000, 19_120_000)
        totals = after.stripe_totals()
        assert totals["fees"] >= 880_000
        [foreign] = [ln for ln in after.lines if foreign_charge["id"] in ln.references]
        assert foreign.status is Status.CURRENCY_MISMATCH and foreign.currency == "eur"
        assert not after.clean

        before = await build_report(gateway.platform, path, end=december)
        keys = {ln.key: ln for ln in before.lines}
        assert old_pi in keys and new_pi not in keys
        assert keys[old_pi].status is Status.MATCHED  # its webhook landed in December
