"""The fake Stripe API (tests/fakes/stripe_api.py) driven by the REAL stripe SDK: what billing
code can rely on when its tests point `base_addresses={"api": fake.url}` at it."""

from __future__ import annotations

import asyncio
import csv
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import stripe
from stripe._api_version import _ApiVersion

from tests.fakes.stripe_api import (
    CSV_HEADER,
    FakeStripe,
    decode_form,
    running_fake_stripe,
    sign_webhook,
    webhook_request,
)

SESSIONS = "/v1/checkout/sessions"
SECRET = "whsec_test_secret"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with running_fake_stripe() as running:
        yield running


@pytest.fixture
def client(fake: FakeStripe) -> stripe.StripeClient:
    return stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url}, max_network_retries=0)


def session_params(cents: int = 500, **extra: Any) -> dict[str, Any]:
    metadata = {"account_id": "acc_1", "wallet": "0xabc"}
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": cents,
                    "product_data": {"name": "Pryv credits"},
                },
                "quantity": 1,
            }
        ],
        "success_url": "https://pryv.test/ok?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://pryv.test/cancel",
        "client_reference_id": "acc_1",
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
    }
    params.update(extra)
    return params


def paid_charge(fake: FakeStripe, client: stripe.StripeClient, cents: int = 1000) -> str:
    session = client.v1.checkout.sessions.create(params=session_params(cents))
    fake.complete_session(session.id)
    intent = client.v1.payment_intents.retrieve(fake.sessions[session.id]["payment_intent"])
    return str(intent.latest_charge)


# --- form decoding -----------------------------------------------------------------------------


def test_decode_form_nested_brackets() -> None:
    query = (
        "metadata[account_id]=a1&line_items[0][price_data][unit_amount]=500"
        "&line_items[0][quantity]=1&line_items[1][quantity]=2&expand[]=x&expand[]=y"
        "&other[0]=p&other[1]=q&empty="
    )
    assert decode_form(parse_qsl(query, keep_blank_values=True)) == {
        "metadata": {"account_id": "a1"},
        "line_items": [{"price_data": {"unit_amount": "500"}, "quantity": "1"}, {"quantity": "2"}],
        "expand": ["x", "y"],
        "other": ["p", "q"],
        "empty": "",
    }


# --- checkout sessions -------------------------------------------------------------------------


def test_create_and_retrieve_session(fake: FakeStripe, client: stripe.StripeClient) -> None:
    params = session_params(1234)
    params["metadata"]["pack_id"] = ""  # empty = unset, as in Stripe: not stored
    session = client.v1.checkout.sessions.create(params=params)

    assert isinstance(session, stripe.checkout.Session)
    assert session.id.startswith("cs_test_") and len(session.id) == len("cs_test_") + 24
    assert session.object == "checkout.session"
    assert session.url == f"{fake.url}/pay/{session.id}"
    assert (session.mode, session.status, session.payment_status) == ("payment", "open", "unpaid")
    assert (session.amount_total, session.currency) == (1234, "usd")
    assert session.payment_intent is None and session.livemode is False
    assert session.client_reference_id == "acc_1"
    assert session.success_url == "https://pryv.test/ok?session={CHECKOUT_SESSION_ID}"
    assert session.metadata.to_dict() == {"account_id": "acc_1", "wallet": "0xabc"}

    # The form body the SDK sent, decoded.
    sent = fake.requests[-1]
    assert sent["headers"]["authorization"] == "Bearer sk_test_x"
    assert sent["headers"]["stripe-version"] == _ApiVersion.CURRENT
    assert sent["headers"]["idempotency-key"]  # the SDK always sends one on POST
    assert sent["params"]["line_items"][0]["price_data"]["unit_amount"] == "1234"

    again = client.v1.checkout.sessions.retrieve(session.id)
    assert again.to_dict() == session.to_dict()
    # StripeObject is not a dict: item/attribute access or .to_dict(), never .get().
    assert again["metadata"]["wallet"] == "0xabc"
    with pytest.raises(AttributeError, match="to_dict"):
        again.get("id")  # type: ignore[operator]
    plain = again.to_dict()
    assert isinstance(plain["metadata"], dict) and json.dumps(plain)
    # The payment_intent_data is not part of the session object.
    assert "payment_intent_data" not in plain


async def test_create_and_retrieve_session_async(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    session = await client.v1.checkout.sessions.create_async(
        params=session_params(), options={"idempotency_key": "async-1"}
    )
    again = await client.v1.checkout.sessions.retrieve_async(session.id)
    assert again.id == session.id and again.status == "open"
    assert fake.requests[0]["headers"]["idempotency-key"] == "async-1"


def test_session_validation_errors(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.checkout.sessions.create(
            params={k: v for k, v in session_params().items() if k != "success_url"}
        )
    assert missing.value.http_status == 400
    assert (missing.value.code, missing.value.param) == ("parameter_missing", "success_url")

    bad_item = session_params()
    del bad_item["line_items"][0]["price_data"]["product_data"]
    with pytest.raises(stripe.InvalidRequestError) as no_product:
        client.v1.checkout.sessions.create(params=bad_item)
    assert no_product.value.param == "line_items[0][price_data][product_data]"

    with pytest.raises(stripe.InvalidRequestError, match=r"at least \$0.50 usd"):
        client.v1.checkout.sessions.create(params=session_params(10))
    with pytest.raises(stripe.InvalidRequestError, match="mode"):
        client.v1.checkout.sessions.create(params=session_params(mode="subscription"))


def test_unknown_object_is_404_resource_missing(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert info.value.http_status == 404 and info.value.code == "resource_missing"
    for retrieve in (
        client.v1.payment_intents.retrieve,
        client.v1.charges.retrieve,
        client.v1.disputes.retrieve,
    ):
        with pytest.raises(stripe.InvalidRequestError):
            retrieve("x_nope")


# --- idempotency, auth, failures ---------------------------------------------------------------


def test_idempotent_replay_and_conflict(fake: FakeStripe, client: stripe.StripeClient) -> None:
    first = client.v1.checkout.sessions.create(
        params=session_params(), options={"idempotency_key": "buy-1"}
    )
    replay = client.v1.checkout.sessions.create(
        params=session_params(), options={"idempotency_key": "buy-1"}
    )
    assert replay.id == first.id and replay.to_dict() == first.to_dict()
    assert replay.last_response is not None
    assert replay.last_response.headers["idempotent-replayed"] == "true"
    assert len(fake.sessions) == 1
    assert fake.post_count(SESSIONS) == 2

    with pytest.raises(stripe.IdempotencyError) as conflict:
        client.v1.checkout.sessions.create(
            params=session_params(999), options={"idempotency_key": "buy-1"}
        )
    assert conflict.value.http_status == 400
    assert not isinstance(conflict.value, stripe.InvalidRequestError)
    assert len(fake.sessions) == 1

    # Without an explicit key the SDK generates a fresh one per call: two sessions.
    client.v1.checkout.sessions.create(params=session_params())
    client.v1.checkout.sessions.create(params=session_params())
    assert len(fake.sessions) == 3


async def test_idempotent_replay_async(fake: FakeStripe, client: stripe.StripeClient) -> None:
    sessions = client.v1.checkout.sessions
    a = await sessions.create_async(params=session_params(), options={"idempotency_key": "k"})
    b = await sessions.create_async(params=session_params(), options={"idempotency_key": "k"})
    assert a.id == b.id and len(fake.sessions) == 1
    with pytest.raises(stripe.IdempotencyError):
        await sessions.create_async(params=session_params(700), options={"idempotency_key": "k"})


def test_authentication(fake: FakeStripe) -> None:
    for key in ("pk_test_x", ""):
        bad = stripe.StripeClient(key, base_addresses={"api": fake.url}, max_network_retries=0)
        with pytest.raises(stripe.AuthenticationError) as info:
            bad.v1.checkout.sessions.create(params=session_params())
        assert info.value.http_status == 401
    assert fake.sessions == {}

    response = httpx.post(f"{fake.url}{SESSIONS}", data={"mode": "payment"})
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and "API key" in error["message"]


def test_injected_failure_is_not_retried(fake: FakeStripe, client: stripe.StripeClient) -> None:
    fake.fail_next(SESSIONS, status=500)
    with pytest.raises(stripe.APIError) as info:
        client.v1.checkout.sessions.create(params=session_params())
    assert info.value.http_status == 500
    assert fake.post_count(SESSIONS) == 1 and fake.sessions == {}

    # A StripeClient built without max_network_retries does not retry either (SDK v16 default
    # is 0 for StripeClient; the module-global stripe.max_network_retries does not apply).
    default = stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url})
    fake.fail_next(SESSIONS, status=500)
    with pytest.raises(stripe.APIError):
        default.v1.checkout.sessions.create(params=session_params())
    assert fake.post_count(SESSIONS) == 2

    # With retries on, the SDK repeats the POST with the SAME idempotency key.
    retrying = stripe.StripeClient(
        "sk_test_x", base_addresses={"api": fake.url}, max_network_retries=2
    )
    fake.clear_requests()
    fake.fail_next(SESSIONS, status=500)
    session = retrying.v1.checkout.sessions.create(params=session_params())
    keys = [r["headers"]["idempotency-key"] for r in fake.requests]
    assert len(keys) == 2 and keys[0] == keys[1] and session.id in fake.sessions


def test_lost_response_then_explicit_retry_with_same_key(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    fake.fail_next(SESSIONS, status=500, after_commit=True)
    with pytest.raises(stripe.APIError):
        client.v1.checkout.sessions.create(
            params=session_params(), options={"idempotency_key": "z"}
        )
    assert len(fake.sessions) == 1  # Stripe made it; we never saw the answer
    session = client.v1.checkout.sessions.create(
        params=session_params(), options={"idempotency_key": "z"}
    )
    assert list(fake.sessions) == [session.id]


def test_async_client_is_bound_to_its_first_event_loop(fake: FakeStripe) -> None:
    """The SDK's async httpx pool belongs to the loop that first used it: a StripeClient shared
    across event loops (e.g. pytest-asyncio's per-test loops) fails with APIConnectionError."""
    shared = stripe.StripeClient("sk_test_x", base_addresses={"api": fake.url})

    async def create() -> str:
        return str((await shared.v1.checkout.sessions.create_async(params=session_params())).id)

    assert asyncio.run(create()).startswith("cs_test_")
    with pytest.raises(stripe.APIConnectionError):
        asyncio.run(create())


# --- payment, refunds, disputes ----------------------------------------------------------------


def test_complete_session_creates_intent_charge_and_balance_transaction(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    session = client.v1.checkout.sessions.create(params=session_params(2500))
    event = fake.complete_session(session.id)

    assert event["type"] == "checkout.session.completed"
    assert event["id"].startswith("evt_") and event["object"] == "event"
    assert event["api_version"] == _ApiVersion.CURRENT
    assert event["livemode"] is False and event["pending_webhooks"] == 1
    assert event["request"] == {"id": None, "idempotency_key": None}
    paid = event["data"]["object"]
    assert (paid["id"], paid["status"], paid["payment_status"]) == (session.id, "complete", "paid")
    assert paid["metadata"] == {"account_id": "acc_1", "wallet": "0xabc"}

    done = client.v1.checkout.sessions.retrieve(session.id)
    assert done.payment_intent == paid["payment_intent"] and done.payment_intent.startswith("pi_")
    intent = client.v1.payment_intents.retrieve(done.payment_intent)
    assert (intent.amount, intent.currency, intent.status) == (2500, "usd", "succeeded")
    assert intent.metadata.to_dict() == {"account_id": "acc_1", "wallet": "0xabc"}
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.id.startswith("ch_")
    assert (charge.amount, charge.amount_refunded, charge.refunded, charge.paid) == (
        2500,
        0,
        False,
        True,
    )
    assert charge.payment_intent == intent.id
    assert charge.metadata.to_dict() == intent.metadata.to_dict()
    txn = client.v1.balance_transactions.retrieve(charge.balance_transaction)
    assert (txn.amount, txn.fee, txn.net, txn.type, txn.reporting_category, txn.source) == (
        2500,
        0,
        2500,
        "charge",
        "charge",
        charge.id,
    )

    # expand on retrieve: the id becomes the object.
    expanded = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge"]}
    )
    assert isinstance(expanded.payment_intent, stripe.PaymentIntent)
    assert isinstance(expanded.payment_intent.latest_charge, stripe.Charge)
    assert expanded.payment_intent.latest_charge.id == charge.id

    with pytest.raises(ValueError, match="not open"):
        fake.complete_session(session.id)


def test_async_payment_emits_unpaid_completed_then_succeeded(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    session = client.v1.checkout.sessions.create(params=session_params())
    completed, succeeded = fake.complete_session(session.id, async_payment=True)
    assert completed["type"] == "checkout.session.completed"
    assert completed["data"]["object"]["payment_status"] == "unpaid"
    assert succeeded["type"] == "checkout.session.async_payment_succeeded"
    assert succeeded["data"]["object"]["payment_status"] == "paid"
    assert completed["id"] != succeeded["id"]
    assert client.v1.checkout.sessions.retrieve(session.id).payment_status == "paid"


def test_expire_session(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=session_params())
    event = fake.expire_session(session.id)
    assert event["type"] == "checkout.session.expired"
    assert event["data"]["object"]["status"] == "expired"
    assert event["data"]["object"]["url"] is None


def test_partial_then_full_refund(fake: FakeStripe, client: stripe.StripeClient) -> None:
    charge_id = paid_charge(fake, client, 1000)

    partial = fake.refund(charge_id, 300)
    assert partial["type"] == "charge.refunded"
    obj = partial["data"]["object"]
    assert (obj["id"], obj["amount_refunded"], obj["refunded"]) == (charge_id, 300, False)
    assert "refunds" not in obj
    assert partial["data"]["previous_attributes"]["amount_refunded"] == 0
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (300, False)

    full = fake.refund(charge_id)  # the rest
    assert full["data"]["object"]["amount_refunded"] == 1000
    assert full["data"]["object"]["refunded"] is True
    charge = client.v1.charges.retrieve(charge_id)
    assert (charge.amount_refunded, charge.refunded) == (1000, True)
    with pytest.raises(ValueError, match="fully refunded"):
        fake.refund(charge_id)

    refunds = list(fake.refunds.values())
    assert [r["amount"] for r in refunds] == [300, 700]
    assert all(r["status"] == "succeeded" and r["charge"] == charge_id for r in refunds)
    txns = [t for t in fake.balance_transactions if t["type"] == "refund"]
    assert sorted(t["amount"] for t in txns) == [-700, -300]
    assert {t["source"] for t in txns} == {r["id"] for r in refunds}
    assert all(t["reporting_category"] == "refund" for t in txns)


def test_dispute(fake: FakeStripe, client: stripe.StripeClient) -> None:
    charge_id = paid_charge(fake, client, 1500)
    event = fake.dispute(charge_id)
    assert event["type"] == "charge.dispute.created"
    dispute_obj = event["data"]["object"]
    dispute = client.v1.disputes.retrieve(dispute_obj["id"])
    assert dispute.id.startswith("du_")
    assert (dispute.amount, dispute.charge, dispute.reason, dispute.status) == (
        1500,
        charge_id,
        "fraudulent",
        "needs_response",
    )
    assert dispute.payment_intent == client.v1.charges.retrieve(charge_id).payment_intent
    (txn,) = [t for t in fake.balance_transactions if t["source"] == dispute.id]
    assert (txn["amount"], txn["type"], txn["reporting_category"]) == (
        -1500,
        "adjustment",
        "dispute",
    )


# --- balance transactions ----------------------------------------------------------------------


def test_balance_transactions_pagination_and_expand(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    charge_id = paid_charge(fake, client, 5000)
    fake.refund(charge_id, 1000)
    fake.dispute(charge_id, 2000)
    planted = [fake.plant_balance_transaction(amount=100 + i) for i in range(10)]
    assert len(fake.balance_transactions) == 13

    first = client.v1.balance_transactions.list()
    assert (
        len(first.data) == 10 and first.has_more is True and first.url == "/v1/balance_transactions"
    )
    assert first.data[0].id == planted[-1]["id"]  # newest first

    every = list(first.auto_paging_iter())
    assert [t.id for t in every] == [t["id"] for t in fake.balance_transactions]
    assert len({t.id for t in every}) == 13
    assert [r["params"].get("starting_after") for r in fake.requests[-2:]] == [
        None,
        first.data[-1].id,
    ]

    small = client.v1.balance_transactions.list(params={"limit": 2})
    assert len(small.data) == 2
    nxt = client.v1.balance_transactions.list(
        params={"limit": 2, "starting_after": small.data[-1].id}
    )
    assert nxt.data[0].id == every[2].id

    expanded = client.v1.balance_transactions.list(params={"limit": 100, "expand": ["data.source"]})
    by_type = {t.type: t for t in expanded.data if t.source is not None}
    assert isinstance(by_type["charge"].source, stripe.Charge)
    assert by_type["charge"].source.id == charge_id
    assert isinstance(by_type["refund"].source, stripe.Refund)
    assert by_type["refund"].source.charge == charge_id
    assert isinstance(by_type["adjustment"].source, stripe.Dispute)
    plain = by_type["adjustment"].to_dict()
    assert plain["source"]["object"] == "dispute" and plain["amount"] == -2000
    assert fake.requests[-1]["params"]["expand"] == ["data.source"]

    with pytest.raises(stripe.InvalidRequestError, match=r"data\.source"):
        client.v1.balance_transactions.list(params={"expand": ["source"]})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.balance_transactions.list(params={"limit": 101})


async def test_balance_transactions_async_paging(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    for i in range(25):
        fake.plant_balance_transaction(amount=i + 1, type="charge")
    page = await client.v1.balance_transactions.list_async(
        params={"limit": 7, "expand": ["data.source"]}
    )
    seen = [txn.to_dict() async for txn in page.auto_paging_iter()]
    assert [t["amount"] for t in seen] == list(range(25, 0, -1))
    # expand travels with every page request
    assert all(r["params"]["expand"] == ["data.source"] for r in fake.requests)
    assert len(fake.requests) == 4


def test_plant_and_drop_balance_transactions(fake: FakeStripe, client: stripe.StripeClient) -> None:
    planted = fake.plant_balance_transaction(
        id="txn_planted", amount=-250, fee=30, source="ch_ghost", created=1_700_000_000
    )
    assert (planted["net"], planted["reporting_category"]) == (-280, "charge")
    listed = client.v1.balance_transactions.list(params={"created": {"lte": 1_700_000_000}})
    assert [t.id for t in listed.data] == ["txn_planted"]
    fake.drop_balance_transaction("txn_planted")
    assert client.v1.balance_transactions.list().data == []
    with pytest.raises(KeyError):
        fake.drop_balance_transaction("txn_planted")


# --- webhooks ----------------------------------------------------------------------------------


def test_signed_webhook_verifies_with_the_sdk(
    fake: FakeStripe, client: stripe.StripeClient
) -> None:
    session = client.v1.checkout.sessions.create(params=session_params())
    event = fake.complete_session(session.id)
    payload, headers = webhook_request(event, SECRET)

    verified = stripe.Webhook.construct_event(
        payload, headers["Stripe-Signature"], SECRET, tolerance=300
    )
    assert isinstance(verified, stripe.Event)
    assert verified.type == "checkout.session.completed"
    assert isinstance(verified.data.object, stripe.checkout.Session)
    assert verified.to_dict() == event
    # Same scheme as the SDK's own test helper.
    ts = int(time.time())
    assert sign_webhook(payload, SECRET, ts) == (
        stripe.WebhookSignature.generate_signature_header(payload.decode(), SECRET, ts)
    )
    assert client.construct_event(payload, headers["Stripe-Signature"], SECRET).id == event["id"]

    tampered = payload.replace(b'"paid"', b'"unpaid"')
    assert tampered != payload
    bad_cases = [
        (tampered, headers["Stripe-Signature"], SECRET),
        (payload, headers["Stripe-Signature"], "whsec_wrong"),
        (payload, sign_webhook(payload, SECRET, int(time.time()) - 301), SECRET),
        (json.dumps(event).encode(), headers["Stripe-Signature"], SECRET),  # re-serialized
        (payload, None, SECRET),
    ]
    for body, header, secret in bad_cases:
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, header, secret, tolerance=300)


# --- reports and HTTP test controls ------------------------------------------------------------


def test_export_balance_transactions_csv(
    fake: FakeStripe, client: stripe.StripeClient, tmp_path: Path
) -> None:
    charge_id = paid_charge(fake, client, 1234)
    fake.refund(charge_id, 234)
    fake.dispute(charge_id, 1000)
    intent_id = fake.charges[charge_id]["payment_intent"]
    out = tmp_path / "itemized.csv"
    fake.export_balance_transactions_csv(out)

    with out.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert tuple(rows[0]) == CSV_HEADER
    assert rows[0][:3] == ["balance_transaction_id", "created_utc", "currency"]
    records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [(r["gross"], r["fee"], r["net"]) for r in records] == [
        ("12.34", "0.00", "12.34"),
        ("-2.34", "0.00", "-2.34"),
        ("-10.00", "0.00", "-10.00"),
    ]
    assert [r["reporting_category"] for r in records] == ["charge", "refund", "dispute"]
    assert all(r["charge_id"] == charge_id and r["payment_intent_id"] == intent_id for r in records)
    assert records[1]["refund_id"].startswith("re_") and records[2]["dispute_id"].startswith("du_")
    assert time.strptime(records[0]["created_utc"], "%Y-%m-%d %H:%M:%S")


def test_http_test_controls(fake: FakeStripe, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=session_params(900))
    with httpx.Client(base_url=fake.url) as http:
        events = http.post(
            f"/_test/checkout/sessions/{session.id}/complete", json={"async_payment": True}
        ).json()
        assert [e["type"] for e in events] == [
            "checkout.session.completed",
            "checkout.session.async_payment_succeeded",
        ]
        charge_id = fake.payment_intents[events[1]["data"]["object"]["payment_intent"]][
            "latest_charge"
        ]
        refunded = http.post(f"/_test/charges/{charge_id}/refund", json={"amount": 100}).json()
        assert refunded["data"]["object"]["amount_refunded"] == 100
        disputed = http.post(f"/_test/charges/{charge_id}/dispute", json={"reason": "general"})
        assert disputed.json()["data"]["object"]["reason"] == "general"
        txn = http.post("/_test/balance_transactions", json={"amount": 5}).json()
        assert http.delete(f"/_test/balance_transactions/{txn['id']}").status_code == 200
        assert http.post("/_test/charges/ch_nope/refund").status_code == 404
        assert http.get(f"/pay/{session.id}").status_code == 200
    assert [e["id"] for e in fake.events][-2:] == [refunded["id"], disputed.json()["id"]]
    assert client.v1.events.retrieve(refunded["id"]).type == "charge.refunded"
