"""MPP under /mpp/*: discovery, 402 challenges, a paid preview, a bought key, a streamed chat
paid from a stream channel — paid by a throwaway wallet on the in-memory chain, with every
refusal crediting nothing."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mpp import Challenge

from domain import tempo, topics
from domain.api_keys import parse_api_key
from gateway.mpp.payment_auth import content_digest
from infra.chain_memory import InMemoryChain
from infra.settings import Settings
from projections import balance, keys
from tests.fakes.upstream import FakeUpstream
from tests.gateway_harness import Gateway, running_gateway
from tests.mpp_payer import Channel, TempoPayer, challenges, receipt_of

PROBLEMS = "https://paymentauth.org/problems/"
PREVIEW = {"text": "Mail alice@example.com or call +1 415 555 0100."}


@pytest.fixture
async def gateway(platform_settings: Settings, upstream: FakeUpstream) -> AsyncIterator[Gateway]:
    async with running_gateway(platform_settings, upstream) as gw:
        yield gw


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
        yield client


def chain_of(gateway: Gateway) -> InMemoryChain:
    chain = gateway.platform.chain
    assert isinstance(chain, InMemoryChain)
    return chain


async def funded_payer(gateway: Gateway, amount: int = 100_000_000) -> TempoPayer:
    payer = TempoPayer(gateway.platform.chain)
    chain_of(gateway).mint(gateway.platform.tempo.currency, payer.address, amount)
    return payer


async def log_topics(gateway: Gateway) -> list[str]:
    return [e.topic for e in await asyncio.to_thread(gateway.platform.app.read_log, 0, 100_000)]


def money_events(log: list[str]) -> list[str]:
    money = (topics.PURCHASE_COMPLETED, topics.GRANT_GRANTED, topics.CHANNEL_SPENT)
    return [t for t in log if t in money]


def decoded(value: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))


# --- discovery and challenges ------------------------------------------------------------------


async def test_discovery_lists_the_four_flows_free_and_cacheable(http: httpx.AsyncClient) -> None:
    response = await http.get("/mpp/openapi.json")
    assert response.status_code == 200
    assert "max-age=300" in response.headers["cache-control"]
    document = response.json()
    assert document["x-service-info"]["categories"]
    paths = document["paths"]
    assert set(paths) == {
        "/mpp/openapi.json",
        "/mpp/pii/preview",
        "/mpp/keys",
        "/mpp/chat/completions",
    }
    for path, intent in (
        ("/mpp/pii/preview", "charge"),
        ("/mpp/keys", "charge"),
        ("/mpp/chat/completions", "session"),
    ):
        operation = paths[path]["post"]
        assert "402" in operation["responses"]
        (offer,) = operation["x-payment-info"]["offers"]
        assert (offer["intent"], offer["method"]) == (intent, "tempo")
        assert {"amount", "currency"} <= set(offer)
    preview_offer = paths["/mpp/pii/preview"]["post"]["x-payment-info"]["offers"][0]
    assert preview_offer["amount"] == "50000"
    whole = (await http.get("/openapi.json")).json()
    assert whole["x-service-info"] == document["x-service-info"]
    assert (
        whole["paths"]["/mpp/keys"]["post"]["x-payment-info"]
        == (paths["/mpp/keys"]["post"]["x-payment-info"])
    )


async def test_an_unpaid_call_gets_a_well_formed_challenge(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    body = json.dumps(PREVIEW).encode()
    response = await http.post(
        "/mpp/pii/preview", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 402
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"] == PROBLEMS + "payment-required" and problem["status"] == 402
    (challenge,) = challenges(response)
    assert problem["challengeId"] == challenge.id
    raw = response.headers["www-authenticate"]
    for param in ("id=", "realm=", 'method="tempo"', 'intent="charge"', "request=", "expires="):
        assert param in raw
    assert challenge.digest == content_digest(body)  # RFC 9530: sha-256=:…:
    request = challenge.request
    terms = gateway.platform.tempo
    assert request["amount"] == "50000" and request["currency"] == terms.currency
    assert request["recipient"] == terms.recipient
    assert request["methodDetails"]["chainId"] == terms.chain_id
    assert challenge.verify(gateway.platform.settings and gateway_secret(gateway), challenge.realm)
    # The request parameter is JCS, base64url without padding.
    request_b64 = raw.split('request="')[1].split('"')[0]
    assert "=" not in request_b64 and decoded(request_b64) == request
    # Nothing was recorded for an unpaid call.
    assert money_events(await log_topics(gateway)) == []


def gateway_secret(gateway: Gateway) -> str:
    from gateway.mpp.service import challenge_secret

    return challenge_secret(gateway.platform.settings.key_pepper)


async def test_bad_input_is_refused_before_any_challenge(http: httpx.AsyncClient) -> None:
    response = await http.post("/mpp/pii/preview", json={"nothing": True})
    assert response.status_code == 400
    response = await http.post("/mpp/keys", json={"pack": "no-such-pack"})
    assert response.status_code == 400
    response = await http.post(
        "/mpp/chat/completions",
        json={"model": "pryv-echo", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "stream"


# --- the paid preview --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["pull", "push"])
async def test_a_paid_preview_answers_like_v1_with_a_receipt(
    gateway: Gateway, http: httpx.AsyncClient, mode: str
) -> None:
    payer = await funded_payer(gateway)
    (challenge,) = challenges(await http.post("/mpp/pii/preview", json=PREVIEW))
    paid = await http.post(
        "/mpp/pii/preview",
        json=PREVIEW,
        headers={"Authorization": await payer.pay(challenge, mode=mode)},
    )
    assert paid.status_code == 200, paid.text
    assert paid.headers["cache-control"] == "private"
    result = paid.json()
    assert result["object"] == "pii.preview"
    assert "alice@example.com" not in result["text"]["redacted"]
    assert result["counts"].get("EMAIL_ADDRESS") == 1
    receipt = receipt_of(paid)
    assert receipt.status == "success" and receipt.method == "tempo"
    chain_receipt = await gateway.platform.chain.receipt(receipt.reference)
    assert chain_receipt is not None and chain_receipt.succeeded  # the receipt is on chain
    terms = gateway.platform.tempo
    assert chain_of(gateway).balance(terms.currency, terms.recipient) == 50_000
    # Same answer as /v1/pii/preview with a key.
    key = await gateway.funded_key(usd="1")
    v1 = await http.post(
        "/v1/pii/preview", json=PREVIEW, headers={"Authorization": f"Bearer {key}"}
    )
    assert v1.json()["text"] == result["text"]
    # Money: credited once by transaction, then held and settled like any preview.
    await gateway.settled()
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 100_000)
    credits = [e for e in log if e.topic == topics.GRANT_GRANTED and e.data["granted_by"] == "mpp"]
    assert [e.data["grant_ref"] for e in credits] == [f"tempo:{receipt.reference}"]
    account = credits[0].data["account_id"]
    settled = [e for e in log if e.topic == topics.HOLD_SETTLED and e.data["account_id"] == account]
    assert [e.data["actual_micros"] for e in settled] == [50_000]
    after = await balance.read_balance(gateway.platform.read_store, account, "test")
    assert (after.credited_micros, after.debited_micros, after.held_micros) == (50_000, 50_000, 0)


async def test_payment_authorization_header_works_beside_a_bearer(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    payer = await funded_payer(gateway)
    (challenge,) = challenges(await http.post("/mpp/pii/preview", json=PREVIEW))
    paid = await http.post(
        "/mpp/pii/preview",
        json=PREVIEW,
        headers={
            "Authorization": "Bearer proxy-token",
            "Payment-Authorization": await payer.pay(challenge),
        },
    )
    assert paid.status_code == 200, paid.text


# --- refusals ----------------------------------------------------------------------------------


async def refused(
    http: httpx.AsyncClient, authorization: str, *, body: dict[str, Any] = PREVIEW
) -> httpx.Response:
    response = await http.post(
        "/mpp/pii/preview", json=body, headers={"Authorization": authorization}
    )
    if response.status_code == 402:
        assert challenges(response), "a 402 always carries a fresh challenge"
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "payment-receipt" not in response.headers
    return response


async def test_replayed_credential_is_refused_and_credits_once(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    payer = await funded_payer(gateway)
    (challenge,) = challenges(await http.post("/mpp/pii/preview", json=PREVIEW))
    authorization = await payer.pay(challenge, mode="push")
    first = await http.post(
        "/mpp/pii/preview", json=PREVIEW, headers={"Authorization": authorization}
    )
    assert first.status_code == 200
    again = await refused(http, authorization)
    assert again.status_code == 402 and again.json()["type"] == PROBLEMS + "invalid-challenge"
    concurrent = TempoPayer(gateway.platform.chain, payer.key)
    (fresh,) = challenges(again)
    pulled = await concurrent.pay(fresh)
    answers = await asyncio.gather(
        *(
            http.post("/mpp/pii/preview", json=PREVIEW, headers={"Authorization": pulled})
            for _ in range(4)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 402, 402, 402]
    await gateway.settled()
    log = await log_topics(gateway)
    assert money_events(log).count(topics.GRANT_GRANTED) == 2  # two payments, two credits


async def test_altered_expired_and_foreign_challenges_are_refused(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    payer = await funded_payer(gateway)
    (challenge,) = challenges(await http.post("/mpp/pii/preview", json=PREVIEW))
    cheaper = {**challenge.request, "amount": "1"}
    altered = Challenge(
        id=challenge.id,
        method=challenge.method,
        intent=challenge.intent,
        request=cheaper,
        realm=challenge.realm,
        request_b64=base64.urlsafe_b64encode(json.dumps(cheaper).encode()).decode().rstrip("="),
        digest=challenge.digest,
        expires=challenge.expires,
        opaque=challenge.opaque,
    )
    response = await refused(http, await payer.pay(altered, amount=1))
    assert response.status_code == 402
    assert response.json()["type"] == PROBLEMS + "invalid-challenge"
    # A challenge for another body (the digest binds it).
    response = await refused(http, await payer.pay(challenge), body={"text": "another text"})
    assert response.json()["type"] == PROBLEMS + "invalid-challenge"
    # Expired: issued five minutes and more ago.
    service = gateway.platform  # noqa: F841 - the service is on the app
    from datetime import UTC, datetime, timedelta

    from gateway.mpp.payment_auth import PaymentAuth
    from gateway.mpp.service import challenge_secret

    auth = PaymentAuth(challenge_secret(gateway.platform.settings.key_pepper), challenge.realm)
    old = auth.issue(
        _offer_of(challenge),
        "/mpp/pii/preview",
        json.dumps(PREVIEW, separators=(",", ":")).encode(),
        now=datetime.now(UTC) - timedelta(minutes=6),
    )
    response = await http.post(
        "/mpp/pii/preview",
        content=json.dumps(PREVIEW, separators=(",", ":")).encode(),
        headers={"Authorization": await payer.pay(old), "Content-Type": "application/json"},
    )
    assert response.status_code == 402 and "expired" in response.json()["detail"]
    # A charge challenge of /mpp/keys spent on /mpp/pii/preview.
    (keys_challenge,) = challenges(await http.post("/mpp/keys", json={"pack": "pack_10"}))
    response = await refused(http, await payer.pay(keys_challenge))
    assert response.json()["type"] == PROBLEMS + "invalid-challenge"
    # Malformed.
    for bad in ("Payment !!!", "Payment eyJub3QiOiJqc29u", "Payment a, Payment b"):
        response = await refused(http, bad)
        assert response.status_code in (400, 402)
        assert response.json()["type"] in (
            PROBLEMS + "malformed-credential",
            PROBLEMS + "bad-request",
        )
    await gateway.settled()
    assert money_events(await log_topics(gateway)) == []
    terms = gateway.platform.tempo
    assert chain_of(gateway).balance(terms.currency, terms.recipient) == 0


def _offer_of(challenge: Challenge) -> Any:
    from gateway.mpp.payment_auth import Offer

    return Offer(challenge.method, challenge.intent, challenge.request, "old")


async def test_wrong_amount_recipient_or_memo_is_refused_and_nothing_moves(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    payer = await funded_payer(gateway)
    stranger = "0x" + "77" * 20
    cases = [
        ({"amount": 49_999}, "payment-insufficient"),
        ({"amount": 60_000}, "verification-failed"),
        ({"recipient": stranger}, "verification-failed"),
        ({"memo": "0x" + "00" * 32}, "verification-failed"),
        ({"source": tempo.did_pkh(4217, stranger)}, "verification-failed"),
    ]
    response = await http.post("/mpp/pii/preview", json=PREVIEW)
    for overrides, slug in cases:
        (challenge,) = challenges(response)
        response = await refused(http, await payer.pay(challenge, **overrides))
        assert response.status_code == 402, overrides
        assert response.json()["type"] == PROBLEMS + slug, overrides
    # Push mode with a transfer of the wrong amount: on chain, but it pays nothing here.
    (challenge,) = challenges(response)
    response = await refused(http, await payer.pay(challenge, mode="push", amount=1))
    assert response.json()["type"] == PROBLEMS + "payment-insufficient"
    await gateway.settled()
    assert money_events(await log_topics(gateway)) == []


# --- buying a key ------------------------------------------------------------------------------


async def test_a_bought_key_works_on_v1_and_the_purchase_is_recorded_once(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    payer = await funded_payer(gateway)
    body = {"pack": "pack_10", "name": "agent"}
    unpaid = await http.post("/mpp/keys", json=body)
    assert unpaid.status_code == 402
    (challenge,) = challenges(unpaid)
    assert challenge.request["amount"] == "10000000"
    authorization = await payer.pay(challenge, mode="push")
    bought = await http.post("/mpp/keys", json=body, headers={"Authorization": authorization})
    assert bought.status_code == 200, bought.text
    answer = bought.json()
    assert answer["account"] == payer.did and answer["key"].startswith("pryv_test_")
    reference = receipt_of(bought).reference
    assert answer["reference"] == reference
    models = await http.get("/v1/models", headers={"Authorization": f"Bearer {answer['key']}"})
    assert models.status_code == 200
    chat = await http.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {answer['key']}"},
        json={"model": "pryv-echo", "messages": [{"role": "user", "content": "hello"}]},
    )
    assert chat.status_code == 200, chat.text
    # The same payment again: refused, nothing more credited, no second key.
    again = await http.post("/mpp/keys", json=body, headers={"Authorization": authorization})
    assert again.status_code == 402
    (fresh,) = challenges(again)
    reused = await http.post(
        "/mpp/keys",
        json=body,
        headers={"Authorization": await payer_reusing(payer, fresh, reference)},
    )
    assert reused.status_code == 402
    await gateway.settled()
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 100_000)
    grants = [e for e in log if e.topic == topics.GRANT_GRANTED]
    assert [(g.data["amount_micros"], g.data["wallet"]) for g in grants] == [
        (10_000_000, payer.address)
    ]
    record = await keys.read_key(gateway.platform.read_store, parse_api_key(answer["key"]).key_id)
    assert record is not None and record.account_id == grants[0].data["account_id"]


async def payer_reusing(payer: TempoPayer, challenge: Challenge, tx_hash: str) -> str:
    """A push credential naming an old payment's transaction for a new challenge."""
    from mpp import Credential

    return Credential(
        challenge=challenge.to_echo(), payload={"type": "hash", "hash": tx_hash}, source=payer.did
    ).to_authorization()


# --- the session chat --------------------------------------------------------------------------

WORDS = " ".join(f"w{i}" for i in range(40))
CHAT = {
    "model": "echo-slow",
    "stream": True,
    "messages": [{"role": "user", "content": WORDS}],
}


async def session_challenge(http: httpx.AsyncClient, body: dict[str, Any] = CHAT) -> Challenge:
    response = await http.post("/mpp/chat/completions", json=body)
    assert response.status_code == 402, response.text
    (challenge,) = challenges(response)
    assert (challenge.method, challenge.intent) == ("tempo", "session")
    return challenge


async def read_events(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs of an SSE response ("message" for plain data lines)."""
    event = "message"
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            yield event, line[6:]
            event = "message"


def channel_state(gateway: Gateway, channel_id: str) -> Any:
    return gateway.platform.app.payment_channel(channel_id)


async def test_a_session_chat_pauses_for_a_voucher_and_resumes(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    payer = await funded_payer(gateway)
    challenge = await session_challenge(http)
    request = challenge.request
    assert request["unitType"] == "llm_token" and int(request["suggestedDeposit"]) > 0
    assert request["methodDetails"]["escrowContract"] == gateway.platform.tempo.escrow
    deposit = 1_000
    # The first voucher pays the prompt and a few words; the answer needs more.
    channel, opening = await payer.open(challenge, deposit, cumulative=60)
    chunks: list[str] = []
    needs: list[dict[str, Any]] = []
    final: dict[str, Any] | None = None
    async with http.stream(
        "POST", "/mpp/chat/completions", json=CHAT, headers={"Authorization": opening}
    ) as response:
        assert response.status_code == 200
        first = receipt_of(response)
        assert first.reference == channel.channel_id
        async for event, data in read_events(response):
            if event == "payment-need-voucher":
                need = json.loads(data)
                needs.append(need)
                assert need["channelId"] == channel.channel_id
                assert int(need["requiredCumulative"]) > int(need["acceptedCumulative"])
                state = channel_state(gateway, channel.channel_id)
                assert state.spent <= state.accepted  # nothing served beyond the voucher
                top = await http.head(
                    "/mpp/chat/completions",
                    headers={
                        "Authorization": payer.voucher(
                            channel, int(need["requiredCumulative"]) + 20
                        )
                    },
                )
                assert top.status_code == 200 and "payment-receipt" in top.headers
            elif event == "payment-receipt":
                final = json.loads(data)
            elif data != "[DONE]":
                for choice in json.loads(data).get("choices") or []:
                    chunks.append(choice["delta"].get("content") or "")
    assert needs, "the stream never paused for a voucher"
    assert "".join(chunks).split() == WORDS.split()  # the whole answer, once
    assert final is not None and final["intent"] == "session" and final["status"] == "success"
    state = channel_state(gateway, channel.channel_id)
    assert final["spent"] == str(state.spent) and final["acceptedCumulative"] == str(state.accepted)
    assert 0 < state.spent <= state.accepted <= deposit
    # Every increment is a Spent event, each raising spent, each covered by a voucher.
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 100_000)
    accepted, spent = 0, 0
    for e in log:
        if e.originator_id != str(state.id):
            continue
        if e.topic == topics.CHANNEL_VOUCHER_ACCEPTED:
            accepted = e.data["cumulative"]
        elif e.topic == topics.CHANNEL_SPENT:
            assert e.data["spent"] > spent and e.data["spent"] <= accepted
            spent = e.data["spent"]
    assert spent == state.spent
    # The ledger and balance see the session like card money (paid and spent, net zero).
    await gateway.settled()
    entries = await ledger_entries(gateway, state.account_id)
    assert sum(e["paid_micros"] for e in entries if e["type"] == "session") == state.spent
    held = await balance.read_balance(gateway.platform.read_store, state.account_id, "test")
    assert held.credited_micros == held.debited_micros == state.spent
    # Close: the payee captures exactly what was spent; the rest goes back to the payer.
    before = chain_of(gateway).balance(gateway.platform.tempo.currency, payer.address)
    closed = await http.post(
        "/mpp/chat/completions",
        headers={"Authorization": payer.voucher(channel, state.spent, action="close")},
    )
    assert closed.status_code == 200, closed.text
    tx_hash = closed.json()["txHash"]
    assert receipt_of(closed).reference == channel.channel_id
    terms = gateway.platform.tempo
    assert chain_of(gateway).balance(terms.currency, terms.recipient) == state.spent
    refund = deposit - state.spent
    assert chain_of(gateway).balance(terms.currency, payer.address) == before + refund
    assert (await gateway.platform.chain.receipt(tx_hash)).succeeded
    after = await http.head(
        "/mpp/chat/completions", headers={"Authorization": payer.voucher(channel, deposit)}
    )
    assert after.status_code == 410


async def ledger_entries(gateway: Gateway, account_id: str) -> list[dict[str, Any]]:
    from projections.ledger import ledger_page

    return await ledger_page(gateway.platform.read_store, account_id, before=None, limit=500)


async def open_channel(
    gateway: Gateway, http: httpx.AsyncClient, payer: TempoPayer, deposit: int, cumulative: int
) -> Any:
    challenge = await session_challenge(http)
    channel, opening = await payer.open(challenge, deposit, cumulative=cumulative)
    opened = await http.post("/mpp/chat/completions", headers={"Authorization": opening})
    assert opened.status_code == 200, opened.text
    assert opened.json()["acceptedCumulative"] == str(cumulative)
    return channel


async def test_voucher_refusals_credit_nothing(gateway: Gateway, http: httpx.AsyncClient) -> None:
    payer = await funded_payer(gateway)
    channel = await open_channel(gateway, http, payer, 500, 100)

    async def voucher(authorization: str) -> httpx.Response:
        return await http.post("/mpp/chat/completions", headers={"Authorization": authorization})

    same = await voucher(payer.voucher(channel, 100))  # resubmitted: idempotent
    assert same.status_code == 200 and same.json()["acceptedCumulative"] == "100"
    raised = await voucher(payer.voucher(channel, 200))
    assert raised.json()["acceptedCumulative"] == "200"
    lower = await voucher(payer.voucher(channel, 150))
    assert lower.status_code == 402 and challenges(lower)
    assert lower.json()["type"] == PROBLEMS + "verification-failed"
    too_much = await voucher(payer.voucher(channel, 501))
    assert too_much.json()["type"] == PROBLEMS + "session/amount-exceeds-deposit"
    other = await open_channel(gateway, http, payer, 500, 0)
    foreign = await voucher(payer.voucher(channel, 300, channel_id=other.channel_id))
    assert foreign.status_code == 402
    assert foreign.json()["type"] == PROBLEMS + "session/signer-mismatch"
    stranger = await funded_payer(gateway)
    forged = await voucher(payer.voucher(channel, 300, signer=stranger))
    assert forged.json()["type"] == PROBLEMS + "session/signer-mismatch"
    nowhere = Channel("0x" + "ab" * 32, "", 0, channel.challenge)
    unknown = await voucher(payer.voucher(nowhere, 1))
    assert unknown.status_code == 410
    assert unknown.json()["type"] == PROBLEMS + "session/channel-not-found"
    wrong_close = await voucher(payer.voucher(channel, 200, action="close"))
    assert wrong_close.status_code == 402  # nothing was spent: a close must be for 0
    assert channel_state(gateway, channel.channel_id).accepted == 200
    await gateway.settled()
    assert money_events(await log_topics(gateway)) == []  # vouchers alone move no money


async def test_a_prompt_the_voucher_does_not_cover_is_refused_before_the_upstream(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    payer = await funded_payer(gateway)
    channel = await open_channel(gateway, http, payer, 5_000, 0)
    response = await http.post(
        "/mpp/chat/completions", json=CHAT, headers={"Authorization": payer.voucher(channel, 1)}
    )
    assert response.status_code == 402
    problem = response.json()
    assert problem["type"] == PROBLEMS + "session/insufficient-balance"
    assert int(problem["requiredTopUp"]) > 0 and challenges(response)
    assert channel_state(gateway, channel.channel_id).spent == 0


async def test_a_top_up_raises_the_deposit_for_larger_vouchers(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    payer = await funded_payer(gateway)
    channel = await open_channel(gateway, http, payer, 100, 100)
    over = await http.head(
        "/mpp/chat/completions", headers={"Authorization": payer.voucher(channel, 150)}
    )
    assert over.status_code == 402
    topped = await http.post(
        "/mpp/chat/completions", headers={"Authorization": await payer.top_up(channel, 400)}
    )
    assert topped.status_code == 200, topped.text
    assert topped.json()["deposit"] == "500" and topped.json()["txHash"]
    now = await http.head(
        "/mpp/chat/completions", headers={"Authorization": payer.voucher(channel, 450)}
    )
    assert now.status_code == 200
    assert channel_state(gateway, channel.channel_id).accepted == 450


async def test_the_documented_client_example_runs(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/examples/mpp_client.py, as printed, against the embedded chain."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "docs" / "examples" / "mpp_client.py"
    spec = importlib.util.spec_from_file_location("mpp_client_example", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    await example.main(gateway.url, "pryv-echo")
    out = capsys.readouterr().out
    assert "preview: Write to" in out and "jane.doe@example.com" not in out
    assert "bought pryv_test_" in out and "with the key: hello" in out
    assert "chat: 'a b c d e'" in out and "closed in 0x" in out


async def test_closing_a_paused_session_ends_its_stream_with_a_receipt(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    payer = await funded_payer(gateway)
    challenge = await session_challenge(http)
    channel, opening = await payer.open(challenge, 1_000, cumulative=60)
    events: list[str] = []
    async with http.stream(
        "POST", "/mpp/chat/completions", json=CHAT, headers={"Authorization": opening}
    ) as response:
        async for event, data in read_events(response):
            events.append(event)
            if event == "payment-need-voucher":
                spent = channel_state(gateway, channel.channel_id).spent
                closed = await http.post(
                    "/mpp/chat/completions",
                    headers={"Authorization": payer.voucher(channel, spent, action="close")},
                )
                assert closed.status_code == 200, closed.text
            if event == "payment-receipt":
                assert json.loads(data)["spent"] == str(spent)
    assert events[-2:] == ["payment-receipt", "message"]  # then [DONE]
    # A chat on the closed channel is refused before anything is sent upstream.
    again = await http.post(
        "/mpp/chat/completions", json=CHAT, headers={"Authorization": payer.voucher(channel, 60)}
    )
    assert again.status_code == 410


async def stream_all(
    http: httpx.AsyncClient, authorization: str, body: dict[str, Any] = CHAT
) -> tuple[str, dict[str, Any]]:
    text, receipt = "", {}
    async with http.stream(
        "POST", "/mpp/chat/completions", json=body, headers={"Authorization": authorization}
    ) as response:
        assert response.status_code == 200, await response.aread()
        async for event, data in read_events(response):
            if event == "payment-receipt":
                receipt = json.loads(data)
            elif event == "message" and data != "[DONE]":
                for choice in json.loads(data).get("choices") or []:
                    text += choice["delta"].get("content") or ""
    return text, receipt


async def test_each_stream_on_a_channel_pays_for_itself_and_a_replay_starts_none(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    payer = await funded_payer(gateway)
    challenge = await session_challenge(http)
    channel, opening = await payer.open(challenge, 5_000, cumulative=1_000)
    first_text, first = await stream_all(http, opening)
    assert first_text.split() == WORDS.split()
    one = int(first["spent"])
    # The same credential again (a captured header, a blind retry): no second stream.
    replay = await http.post("/mpp/chat/completions", json=CHAT, headers={"Authorization": opening})
    assert replay.status_code == 402 and challenges(replay)
    assert replay.json()["type"] == PROBLEMS + "verification-failed"
    # A second stream on the same channel, with a higher voucher, pays its own cost too.
    second_text, second = await stream_all(http, payer.voucher(channel, 2_000))
    assert second_text == first_text
    assert int(second["spent"]) == 2 * one  # not max(cost1, cost2)
    state = channel_state(gateway, channel.channel_id)
    assert state.spent == 2 * one <= state.accepted


async def test_the_prompt_is_paid_before_the_upstream_is_called(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    payer = await funded_payer(gateway)
    challenge = await session_challenge(http)
    channel, opening = await payer.open(challenge, 5_000, cumulative=1_000)
    async with http.stream(
        "POST", "/mpp/chat/completions", json=CHAT, headers={"Authorization": opening}
    ) as response:
        assert response.status_code == 200  # and the client leaves before any chunk
    spent = channel_state(gateway, channel.channel_id).spent
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 100_000)
    (first, *_) = [e for e in log if e.topic == topics.CHANNEL_SPENT]
    assert first.data["tokens_in"] > 0 and first.data["tokens_out"] == 0
    assert spent >= first.data["delta"] > 0


async def test_a_forced_close_is_settled_for_exactly_what_was_spent(
    gateway: Gateway, http: httpx.AsyncClient
) -> None:
    from workers.channels import ChannelSettler

    payer = await funded_payer(gateway)
    minted = chain_of(gateway).balance(gateway.platform.tempo.currency, payer.address)
    challenge = await session_challenge(http)
    channel, opening = await payer.open(challenge, 5_000, cumulative=1_000)
    _text, receipt = await stream_all(http, opening)
    spent = int(receipt["spent"])
    assert 0 < spent < 1_000
    await payer.request_close(channel)  # the payer tries to walk away with the deposit
    refused = await http.head(
        "/mpp/chat/completions", headers={"Authorization": payer.voucher(channel, 1_100)}
    )
    assert refused.status_code == 402  # no voucher is taken on a channel being force-closed
    await gateway.settled()
    await ChannelSettler(gateway.platform).settle_once()  # (the in-process one may beat it)
    deadline = asyncio.get_running_loop().time() + 60
    while not channel_state(gateway, channel.channel_id).closed:
        assert asyncio.get_running_loop().time() < deadline, "the forced close was not settled"
        await asyncio.sleep(0.1)
    state = channel_state(gateway, channel.channel_id)
    assert state.captured == spent
    terms = gateway.platform.tempo
    assert chain_of(gateway).balance(terms.currency, terms.recipient) == spent
    assert chain_of(gateway).balance(terms.currency, payer.address) == minted - spent
    log = await asyncio.to_thread(gateway.platform.app.read_log, 0, 100_000)
    (closed,) = [e.data for e in log if e.topic == topics.CHANNEL_CLOSED]
    assert closed["settled"] == 1_000 and closed["refund_tx"]  # captured 1000, gave back 1000-spent
    await gateway.settled()
    assert await ChannelSettler(gateway.platform).settle_once() == 0  # nothing left to watch
