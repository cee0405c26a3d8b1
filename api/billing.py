"""Billing routes: credit packs, Stripe Checkout, the Stripe webhook, and the return pages.

Money only ever moves on a webhook whose Stripe-Signature verifies; each fact is recorded under
a deterministic id (checkout session, charge, dispute), so redeliveries are duplicates.
"""

from __future__ import annotations

import html
import logging
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from api.context import platform_of
from api.errors import ApiError
from api.wallet_auth import WalletFields, authenticate_wallet, wallet_fields_from_request
from bootstrap.platform import Platform
from commands.billing import apply_stripe_event
from commands.results import ConcurrentUpdate, InvalidCommand
from domain.wallet_messages import WalletAction
from gateway.billing import (
    CheckoutState,
    PaymentsNotConfigured,
    checkout_status,
    credit_pack_listing,
    open_checkout,
)
from infra.stripe_billing import BillingNotConfigured, BillingUnavailable, InvalidWebhook

log = logging.getLogger("pryv.billing")
router = APIRouter(prefix="/api/v1/billing", tags=["billing"])


class CheckoutRequest(WalletFields):
    usd_amount: Decimal | None = Field(default=None, alias="usdAmount", gt=0, max_digits=12)
    pack_id: str | None = Field(default=None, alias="packId", max_length=64)


@router.get("/credit-packs")
async def credit_packs(request: Request) -> dict[str, Any]:
    """Public: the packs on sale and the bounds of a custom amount."""
    return credit_pack_listing(platform_of(request))


@router.post("/checkout")
async def checkout(request: Request, body: CheckoutRequest) -> dict[str, Any]:
    """A Stripe Checkout Session for `usdAmount` (credited 1:1) or a credit pack. Credits arrive
    with the payment's webhook, not with this call. Never retried automatically."""
    platform = platform_of(request)
    if not platform.billing.configured:
        raise PaymentsNotConfigured()
    identity = await authenticate_wallet(
        wallet_fields_from_request(request, body),
        action=WalletAction.CHECKOUT,
        key_id="",
        nonces=platform.nonces,
        limiter=platform.call_limits,
        per_minute=platform.settings.management_calls_per_minute,
    )
    return await open_checkout(
        platform,
        wallet=identity.wallet,
        idempotency_key=f"pryv-checkout-{identity.wallet}-{identity.nonce}",
        usd_amount=body.usd_amount,
        pack_id=body.pack_id,
    )


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
    try:
        outcome = await apply_stripe_event(platform.app, platform.billing, event)
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
    dashboard = platform.settings.dashboard_url
    back = html.escape(
        f"{dashboard.rstrip('/')}/#/credits" if dashboard else f"{platform.settings.public_url}/"
    )
    return HTMLResponse(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{html.escape(title)} · Pryv</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem}}
a{{color:#2b59c3}}</style></head>
<body><main><h1>{html.escape(title)}</h1>{body}
<p><a href="{back}">Back to Credits</a></p></main></body></html>""")


@router.get("/success", response_class=HTMLResponse)
async def success(request: Request, session_id: str = "") -> HTMLResponse:
    """Where Stripe sends the buyer after paying (without a dashboard): says whether the
    credit has arrived."""
    platform = platform_of(request)
    status = await checkout_status(platform, session_id)
    amount = html.escape(status.usd_amount or "")
    title, text = {
        CheckoutState.UNKNOWN: (
            "Payment status unknown",
            "We could not find this checkout. If you paid, "
            "your credit appears under Credits once Stripe confirms the payment.",
        ),
        CheckoutState.CREDITED: (
            "Payment received",
            f"Thank you. ${amount} of credit is on your account.",
        ),
        CheckoutState.PAID: (
            "Payment received",
            f"Thank you. Your ${amount} payment is confirmed; "
            "the credit appears under Credits within moments.",
        ),
        CheckoutState.PROCESSING: (
            "Payment processing",
            f"Your ${amount} payment is still processing. The "
            "credit appears under Credits as soon as Stripe confirms it.",
        ),
    }[status.state]
    return _page(title, f"<p>{text}</p>", platform)


@router.get("/cancel", response_class=HTMLResponse)
async def cancel(request: Request, session_id: str = "") -> HTMLResponse:
    return _page(
        "Checkout canceled",
        "<p>Nothing was charged. You can start a new checkout from Credits at any time.</p>",
        platform_of(request),
    )
