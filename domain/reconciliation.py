"""Finance reconciliation: our ledger's payment facts against the processor's records.

Pure: callers gather both sides (event log; Stripe API or its balance-transaction CSV export)
into `PaymentFact`s and this module matches them. Keys: a charge by its PaymentIntent, refunds
by charge (cumulative), a dispute and its reversal (a won dispute) by the dispute's id — the ids
both sides know.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    CHARGE = "charge"
    REFUND = "refund"
    DISPUTE = "dispute"
    DISPUTE_REVERSAL = "dispute_reversal"


class Status(StrEnum):
    MATCHED = "matched"
    MISSING_IN_LEDGER = "missing_in_ledger"
    REJECTED = "rejected"  # paid, and refused credit on purpose (wrong currency, no wallet)
    MISSING_IN_STRIPE = "missing_in_stripe"
    AMOUNT_MISMATCH = "amount_mismatch"


@dataclass(frozen=True)
class PaymentFact:
    kind: Kind
    key: str  # payment intent (charge), charge id (refund), dispute id (dispute, reversal)
    usd_micros: int  # always positive: money in for charges and reversals, out otherwise
    reference: str = ""  # checkout session, balance transaction id, ... (for people)


@dataclass(frozen=True)
class Line:
    kind: Kind
    key: str
    ledger_usd_micros: int | None
    stripe_usd_micros: int | None
    status: Status
    references: str


@dataclass(frozen=True)
class AccountCheck:
    account_id: str
    projected_micros: int
    postings_micros: int

    @property
    def ok(self) -> bool:
        return self.projected_micros == self.postings_micros


@dataclass(frozen=True)
class Shortfall:
    """A settlement whose reported cost exceeded its hold: the excess was not charged."""

    account_id: str
    request_id: str
    model: str
    charged_micros: int
    shortfall_micros: int


@dataclass(frozen=True)
class RejectedPayment:
    """Money the processor reports as paid that Pryv refused to credit (to be refunded)."""

    source_id: str
    currency: str
    amount_minor: int
    reason: str
    payment_intent: str | None = None


@dataclass
class Report:
    lines: list[Line] = field(default_factory=list)
    accounts: list[AccountCheck] = field(default_factory=list)
    # Facts for finance that are not mismatches: they never make a report unclean.
    shortfalls: list[Shortfall] = field(default_factory=list)
    rejected_payments: list[RejectedPayment] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return all(line.status is Status.MATCHED for line in self.lines) and all(
            a.ok for a in self.accounts
        )

    def counts(self) -> dict[str, int]:
        out = {status.value: 0 for status in Status}
        for line in self.lines:
            out[line.status.value] += 1
        out["account_mismatches"] = sum(not a.ok for a in self.accounts)
        out["shortfalls"] = len(self.shortfalls)
        out["rejected_payments"] = len(self.rejected_payments)
        return out


def _totals(facts: Iterable[PaymentFact]) -> dict[tuple[Kind, str], tuple[int, list[str]]]:
    sums: dict[tuple[Kind, str], int] = defaultdict(int)
    refs: dict[tuple[Kind, str], list[str]] = defaultdict(list)
    for fact in facts:
        sums[(fact.kind, fact.key)] += fact.usd_micros
        if fact.reference:
            refs[(fact.kind, fact.key)].append(fact.reference)
    return {k: (v, refs[k]) for k, v in sums.items()}


def reconcile(
    ledger: Iterable[PaymentFact],
    stripe: Iterable[PaymentFact],
    accounts: Iterable[AccountCheck] = (),
    rejected: Iterable[RejectedPayment] = (),
) -> Report:
    """`rejected`: payments recorded as refused credit; their charges are `rejected`, not
    missing (still not clean: the money is to be refunded)."""
    ours, theirs = _totals(ledger), _totals(stripe)
    refused = list(rejected)
    refused_keys = {key for r in refused for key in (r.source_id, r.payment_intent) if key}
    report = Report(
        accounts=sorted(accounts, key=lambda a: a.account_id), rejected_payments=refused
    )
    for kind, key in sorted(set(ours) | set(theirs)):
        mine, stripes = ours.get((kind, key)), theirs.get((kind, key))
        if mine is None and kind is Kind.CHARGE and key in refused_keys:
            status = Status.REJECTED
        elif mine is None:
            status = Status.MISSING_IN_LEDGER
        elif stripes is None:
            status = Status.MISSING_IN_STRIPE
        elif mine[0] != stripes[0]:
            status = Status.AMOUNT_MISMATCH
        else:
            status = Status.MATCHED
        references = sorted(set((mine[1] if mine else []) + (stripes[1] if stripes else [])))
        report.lines.append(
            Line(
                kind,
                key,
                mine[0] if mine else None,
                stripes[0] if stripes else None,
                status,
                " ".join(references),
            )
        )
    return report
