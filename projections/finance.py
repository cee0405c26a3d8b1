"""Finance views folded straight from the event log (no read store): payment facts for
reconciliation, and each account's live balance as the plain sum of its postings — computed
independently of the balance projection, so comparing the two checks the projection.

`FinanceFold` takes the log one event at a time and keeps only what finance reports (payments,
one sum per account, shortfalls, refused payments, wallets): usage holds, the bulk of the log,
leave nothing behind, so `pryv finance reconcile` pages through any history in bounded memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from domain import topics
from domain.envelope import EventEnvelope
from domain.reconciliation import Kind, PaymentFact, RejectedPayment, Shortfall


def _at(event: EventEnvelope) -> datetime | None:
    try:
        return datetime.fromisoformat(event.timestamp)
    except (TypeError, ValueError):
        return None


@dataclass
class FinanceFold:
    payments: list[PaymentFact] = field(default_factory=list)
    postings: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # live env
    shortfalls: list[Shortfall] = field(default_factory=list)
    rejected: list[RejectedPayment] = field(default_factory=list)
    wallets: dict[str, str] = field(default_factory=dict)  # account id -> wallet

    def feed(self, event: EventEnvelope) -> None:
        topic, data = event.topic, event.data
        if topic == topics.ACCOUNT_OPENED:
            self.wallets[event.originator_id] = str(data["wallet"])
        elif topic == topics.PURCHASE_COMPLETED:
            self.postings[data["account_id"]] += data["credits_micros"]
            if data.get("source") == "stripe":
                key = data.get("payment_intent") or data["source_id"]
                self._pay(Kind.CHARGE, key, data["usd_micros"], data["source_id"], event)
        elif topic == topics.GRANT_GRANTED and data["env"] == "live":
            self.postings[data["account_id"]] += data["amount_micros"]
        elif topic == topics.HOLD_SETTLED:
            if data["env"] == "live":
                self.postings[data["account_id"]] -= data["actual_micros"]
            if data.get("shortfall_micros"):
                self.shortfalls.append(
                    Shortfall(
                        account_id=data["account_id"],
                        request_id=data["request_id"],
                        model=data["model"],
                        charged_micros=data["actual_micros"],
                        shortfall_micros=data["shortfall_micros"],
                    )
                )
        elif topic == topics.REFUNDED:
            self.postings[data["account_id"]] -= data["credits_micros"]
            self._pay(Kind.REFUND, data["charge_id"], data["usd_micros"], "", event)
        elif topic == topics.DISPUTE_OPENED:
            self.postings[data["account_id"]] -= data["credits_micros"]
            self._pay(
                Kind.DISPUTE, data["dispute_id"], data["usd_micros"], data["charge_id"], event
            )
        elif topic == topics.DISPUTE_REINSTATED:
            self.postings[data["account_id"]] += data["credits_micros"]
            kind = Kind.DISPUTE_REVERSAL
            self._pay(kind, data["dispute_id"], data["usd_micros"], data["charge_id"], event)
        elif topic == topics.PAYMENT_REJECTED:
            self.rejected.append(
                RejectedPayment(
                    source_id=data["source_id"],
                    currency=data["currency"],
                    amount_minor=data["amount_minor"],
                    reason=data["reason"],
                    payment_intent=data.get("payment_intent"),
                )
            )

    def _pay(self, kind: Kind, key: str, usd: int, reference: str, event: EventEnvelope) -> None:
        self.payments.append(PaymentFact(kind, key, usd, reference, at=_at(event)))


def live_postings(events: Iterable[EventEnvelope]) -> dict[str, int]:
    """credits - settled usage - reversals (+ reinstated disputes), per account, live env.
    MPP session increments are paid and consumed at once: they add nothing."""
    fold = FinanceFold()
    for event in events:
        fold.feed(event)
    return dict(fold.postings)
