"""The per-event evidence rules (domain.evidence), with real EIP-191 signatures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from domain import ids
from domain.evidence import (
    RecordedEvent,
    evidence_problem,
    nonce_of,
    operator_statement,
    stripe_event,
    wallet_signed,
)
from domain.wallet_messages import format_wallet_message
from infra.wallet_signatures import recover_signer, sign_message
from tests.evidence import OPERATOR

KEY = "0x" + "4b" * 32
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def wallet_evidence(action: str, key_id: str = "", ts: datetime = NOW) -> dict[str, str]:
    message = format_wallet_message(action, key_id, "nonce-12345678", ts)
    address, signature = sign_message(KEY, message)
    return wallet_signed(address, message, signature).as_dict()


def check(name: str, evidence: Any, *, aggregate: Any = None, **fields: Any) -> str | None:
    recorded = RecordedEvent(
        name=name,
        aggregate_id=aggregate or uuid4(),
        version=1,
        timestamp=NOW,
        fields=fields,
        evidence=evidence,
    )
    return evidence_problem(
        recorded, recover=recover_signer, operators=(), owner=None, key_aggregate=ids.api_key_id
    )


def test_a_money_event_without_evidence_is_reported_and_others_need_none() -> None:
    assert "no authorization evidence" in (check("CreditGrant.Granted", None) or "")
    assert check("UsageHold.Settled", None) is None
    assert check("PaymentChannel.Spent", None) is None


def test_the_kind_must_be_one_the_event_allows() -> None:
    why = check("CreditPurchase.Completed", wallet_evidence("create"))
    assert why is not None and "needs stripe or payment evidence" in why
    assert check("CreditPurchase.Completed", stripe_event("evt_1").as_dict()) is None
    assert "not a Stripe event id" in (
        check("CreditPurchase.Completed", stripe_event("cs_1").as_dict()) or ""
    )


def test_wallet_messages_bind_action_key_and_time() -> None:
    key_id = "abcdefgh12345678"
    aggregate = ids.api_key_id(key_id)
    assert check("ApiKey.Revoked", wallet_evidence("revoke", key_id), aggregate=aggregate) is None
    wrong_key = check("ApiKey.Revoked", wallet_evidence("revoke", "other-key"), aggregate=aggregate)
    assert wrong_key is not None and "not this key" in wrong_key
    wrong_action = check("ApiKey.Revoked", wallet_evidence("update", key_id), aggregate=aggregate)
    assert wrong_action is not None and "action=update" in wrong_action
    stale = wallet_evidence("revoke", key_id, ts=NOW - timedelta(hours=1))
    assert "too far from the event" in (check("ApiKey.Revoked", stale, aggregate=aggregate) or "")
    forged = {**wallet_evidence("revoke", key_id), "wallet": "0x" + "99" * 20}
    assert "not made by" in (check("ApiKey.Revoked", forged, aggregate=aggregate) or "")


def test_an_operator_signature_covers_every_field_and_the_aggregate() -> None:
    fields = {"grant_ref": "g", "amount_micros": 5, "reason": "r", "wallet": "0x" + "1" * 40}
    aggregate = uuid4()
    signed = OPERATOR.evidence("CreditGrant.Granted", aggregate, 1, fields)
    assert check("CreditGrant.Granted", signed, aggregate=aggregate, **fields) is None
    more = {**fields, "amount_micros": 500}
    assert "does not cover" in (
        check("CreditGrant.Granted", signed, aggregate=aggregate, **more) or ""
    )
    assert "does not cover" in (check("CreditGrant.Granted", signed, **fields) or "")
    # the statement is canonical: field order does not matter
    assert operator_statement("E", aggregate, 1, dict(reversed(list(fields.items())))) == (
        operator_statement("E", aggregate, 1, fields)
    )


def test_the_nonce_of_a_wallet_message() -> None:
    evidence = wallet_evidence("create")
    assert nonce_of(evidence) == (evidence["wallet"], "nonce-12345678")
    assert nonce_of(stripe_event("evt_1").as_dict()) is None
