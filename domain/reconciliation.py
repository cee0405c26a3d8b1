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
from datetime import datetime
from enum import StrEnum

LEDGER_CURRENCY = "usd"  # what Pryv credits; money in another currency is never matched


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
    CURRENCY_MISMATCH = "currency_mismatch"  # Stripe moved it in a currency Pryv never credits


@dataclass(frozen=True)
class PaymentFact:
    kind: Kind
    key: str  # payment intent (charge), charge id (refund), dispute id (dispute, reversal)
    usd_micros: int  # always positive: money in for charges and reversals, out otherwise
    reference: str = ""  # checkout session, balance transaction id, ... (for people)
    at: datetime | None = None  # when it happened (event time; Stripe's `created`)
    currency: str = LEDGER_CURRENCY
    fee_usd_micros: int = 0  # Stripe's fee on it (Stripe's side only)
    net_usd_micros: int | None = None  # what it moved in Stripe's balance (None: unknown)


@dataclass(frozen=True)
class Line:
    kind: Kind
    key: str
    ledger_usd_micros: int | None
    stripe_usd_micros: int | None
    status: Status
    references: str
    at: datetime | None = None  # the earliest time either side records
    stripe_fee_usd_micros: int = 0
    stripe_net_usd_micros: int | None = None
    currency: str = LEDGER_CURRENCY


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

    def stripe_totals(self) -> dict[str, int]:
        """Stripe's side of the reported lines, in micro-USD: gross per kind, fees and net
        (net = what reached the balance: gross in, refunds and disputes out, minus fees).
        Lines in a foreign currency are left out (their amounts are not dollars)."""
        out = {f"{kind.value}_gross": 0 for kind in Kind}
        out["fees"] = out["net"] = 0
        for line in self.lines:
            if line.stripe_usd_micros is None or line.status is Status.CURRENCY_MISMATCH:
                continue
            out[f"{line.kind.value}_gross"] += line.stripe_usd_micros
            out["fees"] += line.stripe_fee_usd_micros
            if line.stripe_net_usd_micros is not None:
                out["net"] += line.stripe_net_usd_micros
            else:
                inflow = line.kind in (Kind.CHARGE, Kind.DISPUTE_REVERSAL)
                signed = line.stripe_usd_micros if inflow else -line.stripe_usd_micros
                out["net"] += signed - line.stripe_fee_usd_micros
        return out

    def counts(self) -> dict[str, int]:
        out = {status.value: 0 for status in Status}
        for line in self.lines:
            out[line.status.value] += 1
        out["account_mismatches"] = sum(not a.ok for a in self.accounts)
        out["shortfalls"] = len(self.shortfalls)
        out["rejected_payments"] = len(self.rejected_payments)
        return out


@dataclass
class _Side:
    """One side's facts for one (kind, key), summed."""

    usd_micros: int = 0
    references: list[str] = field(default_factory=list)
    at: datetime | None = None
    currencies: set[str] = field(default_factory=set)
    fee_usd_micros: int = 0
    net_usd_micros: int | None = None

    def add(self, fact: PaymentFact) -> None:
        self.usd_micros += fact.usd_micros
        if fact.reference:
            self.references.append(fact.reference)
        if fact.at is not None and (self.at is None or fact.at < self.at):
            self.at = fact.at
        self.currencies.add(fact.currency.lower())
        self.fee_usd_micros += fact.fee_usd_micros
        if fact.net_usd_micros is not None:
            self.net_usd_micros = (self.net_usd_micros or 0) + fact.net_usd_micros


def _totals(facts: Iterable[PaymentFact]) -> dict[tuple[Kind, str], _Side]:
    sides: dict[tuple[Kind, str], _Side] = defaultdict(_Side)
    for fact in facts:
        sides[(fact.kind, fact.key)].add(fact)
    return dict(sides)


def _earliest(*moments: datetime | None) -> datetime | None:
    known = [m for m in moments if m is not None]
    return min(known) if known else None


def in_period(at: datetime | None, start: datetime | None, end: datetime | None) -> bool:
    """[start, end); a line with no time at all is kept (never hidden by a filter)."""
    if at is None:
        return True
    return (start is None or at >= start) and (end is None or at < end)


def reconcile(
    ledger: Iterable[PaymentFact],
    stripe: Iterable[PaymentFact],
    accounts: Iterable[AccountCheck] = (),
    rejected: Iterable[RejectedPayment] = (),
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Report:
    """`rejected`: payments recorded as refused credit; their charges are `rejected`, not
    missing (still not clean: the money is to be refunded). `start`/`end`: report only the
    lines whose earliest fact (on either side) falls in [start, end) — matched over the whole
    history first, so a payment whose webhook landed after midnight is not split in two."""
    ours, theirs = _totals(ledger), _totals(stripe)
    refused = list(rejected)
    refused_keys = {key for r in refused for key in (r.source_id, r.payment_intent) if key}
    report = Report(
        accounts=sorted(accounts, key=lambda a: a.account_id), rejected_payments=refused
    )
    for kind, key in sorted(set(ours) | set(theirs)):
        mine, stripes = ours.get((kind, key)), theirs.get((kind, key))
        at = _earliest(mine.at if mine else None, stripes.at if stripes else None)
        if not in_period(at, start, end):
            continue
        foreign = sorted((stripes.currencies if stripes else set()) - {LEDGER_CURRENCY})
        if mine is None and kind is Kind.CHARGE and key in refused_keys:
            status = Status.REJECTED
        elif foreign:
            status = Status.CURRENCY_MISMATCH
        elif mine is None:
            status = Status.MISSING_IN_LEDGER
        elif stripes is None:
            status = Status.MISSING_IN_STRIPE
        elif mine.usd_micros != stripes.usd_micros:
            status = Status.AMOUNT_MISMATCH
        else:
            status = Status.MATCHED
        references = sorted(
            set((mine.references if mine else []) + (stripes.references if stripes else []))
        )
        report.lines.append(
            Line(
                kind,
                key,
                mine.usd_micros if mine else None,
                stripes.usd_micros if stripes else None,
                status,
                " ".join(references),
                at=at,
                stripe_fee_usd_micros=stripes.fee_usd_micros if stripes else 0,
                stripe_net_usd_micros=stripes.net_usd_micros if stripes else None,
                currency=",".join(foreign) or LEDGER_CURRENCY,
            )
        )
    return report
