"""MPP's Stripe charge: with Stripe configured (and a Business Network profile) the preview
and keys also accept a Shared Payment Token, charged once through a PaymentIntent; Stripe's
refusals are 402s with fresh challenges and credit nothing."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from mpp import Challenge, Credential

from domain import topics
from infra.settings import Settings
from tests.fakes.stripe_api import FakeStripe, running_fake_stripe
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, running_gateway
from tests.mpp_payer import challenges, receipt_of

PROBLEMS = "https://paymentauth.org/problems/"
PREVIEW = {"text": "Mail alice@example.com please."}


@pytest.fixture(scope="module")
def stripe_api() -> Iterator[FakeStripe]:
    with running_fake_stripe() as fake:
        yield fake


@pytest.fixture
async def gateway(
    platform_settings: Settings, stripe_api: FakeStripe, upstream: FakeUpstream
) -> AsyncIterator[Gateway]:
    settings = dataclasses.replace(
        platform_settings,
        stripe_secret_key="sk_test_pryv",
        stripe_api_base=stripe_api.url,
        stripe_network_id="profile_pryv_test",
    )
    async with running_gateway(settings, upstream) as gw:
        yield gw


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
        yield client


def stripe_challenge(response: httpx.Response) -> Challenge:
    assert response.status_code == 402
    offered = {(c.method, c.intent): c for c in challenges(response)}
    assert ("tempo", "charge") in offered  # both, one WWW-Authenticate each
    return offered[("stripe", "charge")]


def paying(challenge: Challenge, spt: str) -> dict[str, str]:
    credential = Credential(challenge=challenge.to_echo(), payload={"spt": spt})
    return {"Authorization": credential.to_authorization()}


async def test_a_shared_payment_token_buys_a_preview_once(
    gateway: Gateway, http: httpx.AsyncClient, stripe_api: FakeStripe
) -> None:
    challenge = stripe_challenge(await http.post("/mpp/pii/preview", json=PREVIEW))
    request = challenge.request
    assert (request["amount"], request["currency"]) == ("5", "usd")
    assert request["methodDetails"]["networkId"] == "profile_pryv_test"
    spt = stripe_api.issue_shared_token(max_amount=5)
    headers = paying(challenge, spt)
    paid = await http.post("/mpp/pii/preview", json=PREVIEW, headers=headers)
    assert paid.status_code == 200, paid.text
    assert "alice@example.com" not in paid.json()["text"]["redacted"]
    receipt = receipt_of(paid)
    assert receipt.method == "stripe" and receipt.reference.startswith("pi_")
    intent = stripe_api.payment_intents[receipt.reference]
    assert intent["status"] == "succeeded" and intent["amount"] == 5
    assert intent["metadata"]["mpp_challenge_id"] == challenge.id
    again = await http.post("/mpp/pii/preview", json=PREVIEW, headers=headers)
    assert again.status_code == 402 and challenges(again)
    await gateway.settled()
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 100_000)
    purchases = [e.data for e in log if e.topic == topics.PURCHASE_COMPLETED]
    assert [(p["source"], p["source_id"], p["usd_micros"]) for p in purchases] == [
        ("stripe", receipt.reference, 50_000)
    ]
    assert purchases[0]["payment_intent"] == receipt.reference  # refunds find it
    settled = [e.data for e in log if e.topic == topics.HOLD_SETTLED]
    assert [(s["env"], s["actual_micros"]) for s in settled] == [("live", 50_000)]


async def test_a_card_bought_key_has_an_account_of_its_own(
    gateway: Gateway, http: httpx.AsyncClient, stripe_api: FakeStripe
) -> None:
    body = {"pack": "pack_10"}
    challenge = stripe_challenge(await http.post("/mpp/keys", json=body))
    assert challenge.request["amount"] == "1000"
    first = await http.post(
        "/mpp/keys", json=body, headers=paying(challenge, stripe_api.issue_shared_token(1000))
    )
    assert first.status_code == 200, first.text
    assert first.json()["key"].startswith("pryv_live_")
    challenge = stripe_challenge(await http.post("/mpp/keys", json=body))
    second = await http.post(
        "/mpp/keys", json=body, headers=paying(challenge, stripe_api.issue_shared_token(1000))
    )
    assert second.json()["account"] != first.json()["account"]  # never someone else's


@pytest.mark.parametrize("case", ["used", "over_limit", "unknown", "not_an_spt"])
async def test_stripe_refusals_are_402_and_credit_nothing(
    gateway: Gateway, http: httpx.AsyncClient, stripe_api: FakeStripe, case: str
) -> None:
    challenge = stripe_challenge(await http.post("/mpp/pii/preview", json=PREVIEW))
    spt = {
        "used": stripe_api.issue_shared_token(5),
        "over_limit": stripe_api.issue_shared_token(4),
        "unknown": "spt_nosuchtoken",
        "not_an_spt": "pm_card_visa",
    }[case]
    if case == "used":
        other = stripe_challenge(await http.post("/mpp/pii/preview", json=PREVIEW))
        ok = await http.post("/mpp/pii/preview", json=PREVIEW, headers=paying(other, spt))
        assert ok.status_code == 200
    response = await http.post("/mpp/pii/preview", json=PREVIEW, headers=paying(challenge, spt))
    assert response.status_code == 402 and challenges(response)
    expected = "malformed-credential" if case == "not_an_spt" else "verification-failed"
    assert response.json()["type"] == PROBLEMS + expected
    await gateway.settled()
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 100_000)
    assert sum(e.topic == topics.PURCHASE_COMPLETED for e in log) == (1 if case == "used" else 0)


async def test_discovery_lists_the_stripe_offer_when_configured(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/mpp/openapi.json")).json()["paths"]
    offers = paths["/mpp/pii/preview"]["post"]["x-payment-info"]["offers"]
    assert {(o["method"], o["amount"], o["currency"]) for o in offers} >= {("stripe", "5", "usd")}
