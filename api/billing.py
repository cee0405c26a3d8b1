"""Billing routes: credit packs, Stripe Checkout, the Stripe webhook, and the return pages.

Money only ever moves on a webhook whose Stripe-Signature verifies; each fact is recorded under
a deterministic id (checkout session, charge, dispute), so redeliveries are duplicates.
"""

from __future__ import annotations

import asyncio
import html
import logging
from decimal import Decimal
from typing import Any

from eth_utils.address import is_hex_address
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from api.context import platform_of
from api.errors import ApiError
from api.wallet_auth import WalletFields, authenticate_wallet, wallet_fields_from_request
from bootstrap.platform import Platform
from commands.results import CommandResult, ConcurrentUpdate, InvalidCommand
from domain import ids
from domain.aggregates import credits_for
from domain.credit_packs import CheckoutAmountError, checkout_amount
from domain.money import BILLING_CURRENCY, micros_to_usd
from domain.wallet_messages import WalletAction
from infra.stripe_billing import BillingNotConfigured, BillingUnavailable, InvalidWebhook

log = logging.getLogger("pryv.billing")
router = APIRouter(prefix="/api/v1/billing", tags=["billing"])

PURCHASE_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
DISPUTE_WITHDRAWN_EVENTS = ("charge.dispute.created", "charge.dispute.funds_withdrawn")
DISPUTE_REINSTATED_EVENTS = ("charge.dispute.funds_reinstated", "charge.dispute.closed")


class CheckoutRequest(WalletFields):
    usd_amount: Decimal | None = Field(default=None, alias="usdAmount", gt=0, max_digits=12)
    pack_id: str | None = Field(default=None, alias="packId", max_length=64)


@router.get("/credit-packs")
async def credit_packs(request: Request) -> dict[str, Any]:
    """Public: the packs on sale and the bounds of a custom amount."""
    platform = platform_of(request)
    settings = platform.settings
    return {
        "object": "list",
        "data": [pack.public() for pack in platform.credit_packs],
        "customAmount": {
            "minUsd": micros_to_usd(settings.checkout_min_usd_micros)[:-4],
            "maxUsd": micros_to_usd(settings.checkout_max_usd_micros)[:-4],
        },
        "checkoutAvailable": platform.billing.configured,
    }


@router.post("/checkout")
async def checkout(request: Request, body: CheckoutRequest) -> dict[str, Any]:
    """A Stripe Checkout Session for `usdAmount` (credited 1:1) or a credit pack. Credits arrive
    with the payment's webhook, not with this call. Never retried automatically."""
    platform = platform_of(request)
    if not platform.billing.configured:
        raise ApiError(
            503,
            "billing_not_configured",
            "card payments are not configured on this deployment; an operator can "
            "grant credit with `pryv credits grant`",
        )
    identity = await authenticate_wallet(
        wallet_fields_from_request(request, body),
        action=WalletAction.CHECKOUT,
        key_id="",
        nonces=platform.nonces,
    )
    settings = platform.settings
    try:
        amount = checkout_amount(
            usd_amount=body.usd_amount,
            pack_id=body.pack_id,
            packs=platform.credit_packs,
            min_usd_micros=settings.checkout_min_usd_micros,
            max_usd_micros=settings.checkout_max_usd_micros,
        )
    except CheckoutAmountError as exc:
        param = "packId" if body.pack_id is not None else "usdAmount"
        raise ApiError(400, "invalid_params", str(exc), param=param) from exc
    base = f"{settings.public_url}/api/v1/billing"
    try:
        session = await platform.billing.create_checkout(
            wallet=identity.wallet,
            account_id=str(ids.account_id(identity.wallet)),
            usd_cents=amount.usd_cents,
            credits_micros=amount.credits_micros,
            pack_id=amount.pack_id,
            success_url=f"{base}/success?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{base}/cancel?session_id={{CHECKOUT_SESSION_ID}}",
            idempotency_key=f"pryv-checkout-{identity.wallet}-{identity.nonce}",
        )
    except BillingUnavailable as exc:
        raise ApiError(
            500,
            "billing_error",
            "the payment provider did not create a checkout session; nothing was charged",
        ) from exc
    return {
        "object": "checkout_session",
        "id": session.id,
        "url": session.url,
        "usdAmount": micros_to_usd(amount.usd_micros)[:-4],
        "credits": micros_to_usd(amount.credits_micros),
        "packId": amount.pack_id,
    }


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


async def _purchase(platform: Platform, session: dict[str, Any]) -> CommandResult | str:
    if session.get("payment_status") != "paid":
        return "ignored: not paid yet"
    metadata = session.get("metadata") or {}
    wallet = metadata.get("pryv_wallet")
    amount_minor = _minor_units(session.get("amount_total"))
    paid_micros = amount_minor * 10_000
    if not wallet or paid_micros <= 0:
        return "ignored: not a Pryv checkout"
    refused = _refusal(session, wallet)
    if refused is not None:
        log.error("checkout session %s not credited: %s", session.get("id"), refused)
        recorded = await asyncio.to_thread(
            platform.app.record_rejected_payment,
            source_id=str(session["id"]),
            reason=refused,
            currency=str(session.get("currency") or "")[:16],
            amount_minor=amount_minor,
            payment_intent=session.get("payment_intent"),
        )
        return f"rejected: {refused}" + (" (already recorded)" if recorded.duplicate else "")
    return await asyncio.to_thread(
        platform.app.record_purchase,
        source_id=str(session["id"]),
        wallet=wallet,
        usd_micros=paid_micros,
        credits_micros=_credits(metadata, paid_micros),
        source="stripe",
        payment_intent=session.get("payment_intent"),
    )


async def _payment_metadata(platform: Platform, obj: dict[str, Any]) -> dict[str, Any]:
    """Pryv's metadata for a charge or dispute: on the object itself, else on its payment."""
    metadata = dict(obj.get("metadata") or {})
    if metadata.get("pryv_wallet") or not obj.get("payment_intent"):
        return metadata
    return await platform.billing.payment_intent_metadata(str(obj["payment_intent"]))


async def _refund(platform: Platform, charge: dict[str, Any]) -> CommandResult | str:
    metadata = await _payment_metadata(platform, charge)
    wallet = metadata.get("pryv_wallet")
    if not wallet:
        return "ignored: not a Pryv payment"
    refused = _refusal(charge, wallet)
    if refused is not None:  # its payment was never credited either
        return f"rejected: {refused}"
    charge_usd = _minor_units(charge["amount"]) * 10_000
    return await asyncio.to_thread(
        platform.app.record_refund,
        charge_id=str(charge["id"]),
        payment_intent=charge.get("payment_intent"),
        wallet=wallet,
        charge_usd_micros=charge_usd,
        charge_credits_micros=_credits(metadata, charge_usd),
        total_refunded_usd_micros=_minor_units(charge.get("amount_refunded")) * 10_000,
    )


async def _dispute(platform: Platform, kind: str, dispute: dict[str, Any]) -> CommandResult | str:
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
    metadata = await _payment_metadata(platform, dispute)
    wallet = metadata.get("pryv_wallet")
    if not wallet:
        return "ignored: not a Pryv payment"
    refused = _refusal(dispute, wallet)
    if refused is not None:
        return f"rejected: {refused}"
    usd = _minor_units(dispute["amount"]) * 10_000
    fields: dict[str, Any] = dict(
        dispute_id=str(dispute["id"]),
        charge_id=str(dispute.get("charge") or ""),
        payment_intent=dispute.get("payment_intent"),
        wallet=wallet,
        usd_micros=usd,
        credits_micros=_credits(metadata, usd),
        reason=str(dispute.get("reason") or ""),
    )
    if kind in DISPUTE_REINSTATED_EVENTS:
        return await asyncio.to_thread(
            platform.app.record_dispute_reinstated, status=status, **fields
        )
    return await asyncio.to_thread(platform.app.record_dispute, **fields)


@router.post("/webhook")
async def webhook(request: Request) -> dict[str, Any]:
    """Stripe's events. 2xx means "recorded (or deliberately ignored)"; Stripe retries others."""
    platform = platform_of(request)
    payload = await request.body()
    try:
        event = platform.billing.verify_webhook(payload, request.headers.get("stripe-signature"))
    except BillingNotConfigured as exc:
        raise ApiError(503, "billing_not_configured", "webhooks are not configured") from exc
    except InvalidWebhook as exc:
        raise ApiError(400, "invalid_signature", str(exc)) from exc
    kind = str(event.get("type"))
    obj: dict[str, Any] = (event.get("data") or {}).get("object") or {}
    try:
        if kind in PURCHASE_EVENTS:
            outcome = await _purchase(platform, obj)
        elif kind == "charge.refunded":
            outcome = await _refund(platform, obj)
        elif kind in DISPUTE_WITHDRAWN_EVENTS or kind in DISPUTE_REINSTATED_EVENTS:
            outcome = await _dispute(platform, kind, obj)
        else:
            outcome = "ignored: event type not used"
    except BillingUnavailable as exc:
        raise ApiError(
            503,
            "billing_error",
            "could not read the payment; retry later",
            headers={"Retry-After": "30"},
        ) from exc
    except ConcurrentUpdate as exc:  # nothing written; a redelivery will find the winner's state
        raise ApiError(
            503,
            "billing_busy",
            "concurrent deliveries collided; retry",
            headers={"Retry-After": "1"},
        ) from exc
    except (InvalidCommand, KeyError, ValueError) as exc:
        # Retrying cannot fix it; acknowledge so Stripe stops, and let reconciliation flag it.
        log.error("webhook %s (%s) rejected: %s", event.get("id"), kind, exc)
        return {"received": True, "type": kind, "result": "rejected"}
    if isinstance(outcome, str):
        return {"received": True, "type": kind, "result": outcome}
    return {
        "received": True,
        "type": kind,
        "result": "duplicate" if outcome.duplicate else "recorded",
        "position": outcome.position,
    }


def _page(title: str, body: str, platform: Platform) -> HTMLResponse:
    back = html.escape(platform.settings.dashboard_url or f"{platform.settings.public_url}/")
    return HTMLResponse(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{html.escape(title)} · Pryv</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}}
a{{color:#2b59c3}}</style></head>
<body><main><h1>{html.escape(title)}</h1>{body}
<p><a href="{back}">Back to Pryv</a></p></main></body></html>""")


@router.get("/success", response_class=HTMLResponse)
async def success(request: Request, session_id: str = "") -> HTMLResponse:
    """Where Stripe sends the buyer after paying: says whether the credit has arrived."""
    platform = platform_of(request)
    session = None
    if session_id and platform.billing.configured:
        try:
            session = await platform.billing.retrieve_session(session_id)
        except BillingUnavailable:
            session = None
    if session is None:
        return _page(
            "Payment status unknown",
            "<p>We could not find this checkout. If you paid, "
            "your credit appears in Billing once Stripe confirms the payment.</p>",
            platform,
        )
    credited = await asyncio.to_thread(
        platform.app.has_purchase, str(session.get("id") or session_id)
    )
    amount = html.escape(micros_to_usd(int(session.get("amount_total") or 0) * 10_000)[:-4])
    if credited:
        return _page(
            "Payment received",
            f"<p>Thank you. ${amount} of credit is on your account.</p>",
            platform,
        )
    if session.get("payment_status") == "paid":
        return _page(
            "Payment received",
            f"<p>Thank you. Your ${amount} payment is confirmed; "
            "the credit appears in Billing within moments.</p>",
            platform,
        )
    return _page(
        "Payment processing",
        f"<p>Your ${amount} payment is still processing. The "
        "credit appears in Billing as soon as Stripe confirms it.</p>",
        platform,
    )


@router.get("/cancel", response_class=HTMLResponse)
async def cancel(request: Request, session_id: str = "") -> HTMLResponse:
    return _page(
        "Checkout canceled",
        "<p>Nothing was charged. You can start a new checkout from Billing at any time.</p>",
        platform_of(request),
    )
