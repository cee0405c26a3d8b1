"""Stripe's events as ledger facts: what a signed event means for a wallet's credit.

Money only ever moves on a webhook whose signature verified (the HTTP door checks it); each
fact is recorded under a deterministic id (checkout session, charge, dispute), so redeliveries
are duplicates. Amounts arrive in cents and become micro-USD through `cents_to_micros` only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from eth_utils.address import is_hex_address

from commands.application import PryvApplication
from commands.results import CommandResult
from domain.aggregates import credits_for
from domain.evidence import Presented, stripe_event
from domain.money import BILLING_CURRENCY, cents_to_micros

log = logging.getLogger("pryv.billing")

PURCHASE_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
DISPUTE_WITHDRAWN_EVENTS = ("charge.dispute.created", "charge.dispute.funds_withdrawn")
DISPUTE_REINSTATED_EVENTS = ("charge.dispute.funds_reinstated", "charge.dispute.closed")


class PaymentLookup(Protocol):
    """The payment provider, asked for a payment's metadata when a charge or dispute lacks it."""

    async def payment_intent_metadata(self, payment_intent: str) -> dict[str, Any]: ...


async def apply_stripe_event(
    app: PryvApplication, payments: PaymentLookup, event: dict[str, Any]
) -> CommandResult | str:
    """Record what a verified Stripe event means, or say (a string) why it moves nothing.
    Raises ConcurrentUpdate (retry), and InvalidCommand/KeyError/ValueError for an event no
    retry can fix."""
    kind = str(event.get("type"))
    obj: dict[str, Any] = (event.get("data") or {}).get("object") or {}
    used = kind in PURCHASE_EVENTS or kind == "charge.refunded"
    if not (used or kind in DISPUTE_WITHDRAWN_EVENTS or kind in DISPUTE_REINSTATED_EVENTS):
        return "ignored: event type not used"
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id.startswith("evt_"):
        raise ValueError("a Stripe event without an evt_ id")
    evidence = stripe_event(event_id)  # what every fact it moves points back to
    if kind in PURCHASE_EVENTS:
        return await _purchase(app, obj, evidence)
    if kind == "charge.refunded":
        return await _refund(app, payments, obj, evidence)
    return await _dispute(app, payments, kind, obj, evidence)


def _minor_units(raw: Any) -> int:
    """A Stripe amount (integer minor units); anything else is a malformed event."""
    if isinstance(raw, bool) or not isinstance(raw, int | None):
        raise ValueError(f"amount {raw!r} is not an integer")
    return raw or 0


def _meta_int(metadata: dict[str, Any], name: str) -> int | None:
    raw = metadata.get(name)
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 18:
        return int(raw)
    return None


def _credits(metadata: dict[str, Any], usd_micros: int) -> int:
    """The credit `usd_micros` of a Pryv payment bought, at the rate its checkout quoted (a
    pack may carry bonus credit); 1:1 when the payment carries no quote."""
    quoted_usd = _meta_int(metadata, "pryv_usd_micros") or usd_micros
    quoted_credits = _meta_int(metadata, "pryv_credits_micros") or quoted_usd
    return credits_for(usd_micros, quoted_usd, quoted_credits)


def _refusal(obj: dict[str, Any], wallet: Any) -> str | None:
    """Why a signed Stripe object that names a Pryv wallet still cannot move credit: money in
    another currency (¥1000 is not $1000), or a wallet that is not an address."""
    currency = str(obj.get("currency") or "").lower()
    if currency != BILLING_CURRENCY:
        return f"currency {currency or 'missing'!r} is not {BILLING_CURRENCY!r}"
    if not isinstance(wallet, str) or not is_hex_address(wallet):
        return "wallet metadata is not a 0x address"
    return None


async def _purchase(
    app: PryvApplication, session: dict[str, Any], evidence: Presented
) -> CommandResult | str:
    if session.get("payment_status") != "paid":
        return "ignored: not paid yet"
    metadata = session.get("metadata") or {}
    wallet = metadata.get("pryv_wallet")
    amount_minor = _minor_units(session.get("amount_total"))
    paid_micros = cents_to_micros(amount_minor)
    if not wallet or paid_micros <= 0:
        return "ignored: not a Pryv checkout"
    refused = _refusal(session, wallet)
    if refused is not None:
        log.error("checkout session %s not credited: %s", session.get("id"), refused)
        recorded = await asyncio.to_thread(
            app.record_rejected_payment,
            source_id=str(session["id"]),
            reason=refused,
            currency=str(session.get("currency") or "")[:16],
            amount_minor=amount_minor,
            payment_intent=session.get("payment_intent"),
            evidence=evidence,
        )
        return f"rejected: {refused}" + (" (already recorded)" if recorded.duplicate else "")
    return await asyncio.to_thread(
        app.record_purchase,
        source_id=str(session["id"]),
        wallet=wallet,
        usd_micros=paid_micros,
        credits_micros=_credits(metadata, paid_micros),
        source="stripe",
        payment_intent=session.get("payment_intent"),
        evidence=evidence,
    )


async def _payment_metadata(payments: PaymentLookup, obj: dict[str, Any]) -> dict[str, Any]:
    """Pryv's metadata for a charge or dispute: on the object itself, else on its payment."""
    metadata = dict(obj.get("metadata") or {})
    if metadata.get("pryv_wallet") or not obj.get("payment_intent"):
        return metadata
    return await payments.payment_intent_metadata(str(obj["payment_intent"]))


async def _refund(
    app: PryvApplication, payments: PaymentLookup, charge: dict[str, Any], evidence: Presented
) -> CommandResult | str:
    metadata = await _payment_metadata(payments, charge)
    wallet = metadata.get("pryv_wallet")
    if not wallet:
        return "ignored: not a Pryv payment"
    refused = _refusal(charge, wallet)
    if refused is not None:  # its payment was never credited either
        return f"rejected: {refused}"
    charge_usd = cents_to_micros(_minor_units(charge["amount"]))
    return await asyncio.to_thread(
        app.record_refund,
        charge_id=str(charge["id"]),
        payment_intent=charge.get("payment_intent"),
        wallet=wallet,
        charge_usd_micros=charge_usd,
        charge_credits_micros=_credits(metadata, charge_usd),
        total_refunded_usd_micros=cents_to_micros(_minor_units(charge.get("amount_refunded"))),
        evidence=evidence,
    )


async def _dispute(
    app: PryvApplication,
    payments: PaymentLookup,
    kind: str,
    dispute: dict[str, Any],
    evidence: Presented,
) -> CommandResult | str:
    """Debit when Stripe withdraws a dispute's funds, credit back once if it reinstates them.

    Funds move at `created` for a chargeback, at `funds_withdrawn` when an inquiry escalates,
    and come back with `funds_reinstated` / `closed` as won. An inquiry ("warning_*" status)
    withdraws nothing, so its `created` is not a debit.
    """
    status = str(dispute.get("status") or "")
    if kind == "charge.dispute.created" and status.startswith("warning_"):
        return "ignored: an inquiry withdraws no funds"
    if kind == "charge.dispute.closed" and status != "won":
        return f"ignored: dispute closed as {status or 'unknown'}"
    metadata = await _payment_metadata(payments, dispute)
    wallet = metadata.get("pryv_wallet")
    if not wallet:
        return "ignored: not a Pryv payment"
    refused = _refusal(dispute, wallet)
    if refused is not None:
        return f"rejected: {refused}"
    usd = cents_to_micros(_minor_units(dispute["amount"]))
    fields: dict[str, Any] = dict(
        dispute_id=str(dispute["id"]),
        charge_id=str(dispute.get("charge") or ""),
        payment_intent=dispute.get("payment_intent"),
        wallet=wallet,
        usd_micros=usd,
        credits_micros=_credits(metadata, usd),
        reason=str(dispute.get("reason") or ""),
        evidence=evidence,
    )
    if kind in DISPUTE_REINSTATED_EVENTS:
        return await asyncio.to_thread(app.record_dispute_reinstated, status=status, **fields)
    return await asyncio.to_thread(app.record_dispute, **fields)
