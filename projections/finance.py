"""Finance views folded straight from the event log (no read store): payment facts for
reconciliation, and each account's live balance as the plain sum of its postings — computed
independently of the balance projection, so comparing the two checks the projection."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from domain import topics
from domain.envelope import EventEnvelope
from domain.reconciliation import Kind, PaymentFact, RejectedPayment, Shortfall


def payment_facts(events: Iterable[EventEnvelope]) -> list[PaymentFact]:
    facts = []
    for event in events:
        data = event.data
        if event.topic == topics.PURCHASE_COMPLETED and data.get("source") == "stripe":
            key = data.get("payment_intent") or data["source_id"]
            facts.append(PaymentFact(Kind.CHARGE, key, data["usd_micros"], data["source_id"]))
        elif event.topic == topics.REFUNDED:
            facts.append(PaymentFact(Kind.REFUND, data["charge_id"], data["usd_micros"]))
        elif event.topic == topics.DISPUTE_OPENED:
            facts.append(
                PaymentFact(Kind.DISPUTE, data["dispute_id"], data["usd_micros"], data["charge_id"])
            )
        elif event.topic == topics.DISPUTE_REINSTATED:
            facts.append(
                PaymentFact(
                    Kind.DISPUTE_REVERSAL, data["dispute_id"], data["usd_micros"], data["charge_id"]
                )
            )
    return facts


def live_postings(events: Iterable[EventEnvelope]) -> dict[str, int]:
    """credits - settled usage - reversals (+ reinstated disputes), per account, live env.
    MPP session increments are paid and consumed at once: they add nothing."""
    sums: dict[str, int] = defaultdict(int)
    for event in events:
        data = event.data
        if event.topic == topics.PURCHASE_COMPLETED:
            sums[data["account_id"]] += data["credits_micros"]
        elif event.topic == topics.GRANT_GRANTED and data["env"] == "live":
            sums[data["account_id"]] += data["amount_micros"]
        elif event.topic == topics.HOLD_SETTLED and data["env"] == "live":
            sums[data["account_id"]] -= data["actual_micros"]
        elif event.topic in (topics.REFUNDED, topics.DISPUTE_OPENED):
            sums[data["account_id"]] -= data["credits_micros"]
        elif event.topic == topics.DISPUTE_REINSTATED:
            sums[data["account_id"]] += data["credits_micros"]
    return dict(sums)


def shortfalls(events: Iterable[EventEnvelope]) -> list[Shortfall]:
    """Settlements the hold capped: usage the upstream reported and nobody was charged for."""
    return [
        Shortfall(
            account_id=e.data["account_id"],
            request_id=e.data["request_id"],
            model=e.data["model"],
            charged_micros=e.data["actual_micros"],
            shortfall_micros=e.data["shortfall_micros"],
        )
        for e in events
        if e.topic == topics.HOLD_SETTLED and e.data.get("shortfall_micros")
    ]


def rejected_payments(events: Iterable[EventEnvelope]) -> list[RejectedPayment]:
    return [
        RejectedPayment(
            source_id=e.data["source_id"],
            currency=e.data["currency"],
            amount_minor=e.data["amount_minor"],
            reason=e.data["reason"],
            payment_intent=e.data.get("payment_intent"),
        )
        for e in events
        if e.topic == topics.PAYMENT_REJECTED
    ]
