"""Buying credit: the packs on sale and a Stripe Checkout Session for one of them or a custom
amount, for any door (the HTTP API, the dashboard, MCP). Credit arrives with the payment's
webhook (commands.billing), never with these calls."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bootstrap.platform import Platform
from domain import ids
from domain.credit_packs import CheckoutAmountError, checkout_amount
from domain.errors import ErrorKind, PryvError
from domain.money import cents_to_micros, micros_to_usd, usd_cents_text
from infra.stripe_billing import BillingUnavailable


class PaymentsNotConfigured(PryvError):
    kind, code = ErrorKind.UNAVAILABLE, "billing_not_configured"

    def __init__(self) -> None:
        super().__init__(
            "card payments are not configured on this deployment; an operator can "
            "grant credit with `pryv credits grant`"
        )


def credit_pack_listing(platform: Platform) -> dict[str, Any]:
    """The packs on sale and the bounds of a custom amount."""
    settings = platform.settings
    return {
        "object": "list",
        "data": [pack.public() for pack in platform.credit_packs],
        "customAmount": {
            "minUsd": usd_cents_text(settings.checkout_min_usd_micros),
            "maxUsd": usd_cents_text(settings.checkout_max_usd_micros),
        },
        "checkoutAvailable": platform.billing.configured,
    }


async def open_checkout(
    platform: Platform,
    *,
    wallet: str,
    idempotency_key: str,
    usd_amount: Decimal | None,
    pack_id: str | None,
) -> dict[str, Any]:
    """A checkout_session object (id, url, amount, credits) for `wallet`. Never retried
    automatically; `idempotency_key` makes a client's retry return the same session."""
    if not platform.billing.configured:
        raise PaymentsNotConfigured()
    settings = platform.settings
    try:
        amount = checkout_amount(
            usd_amount=usd_amount,
            pack_id=pack_id,
            packs=platform.credit_packs,
            min_usd_micros=settings.checkout_min_usd_micros,
            max_usd_micros=settings.checkout_max_usd_micros,
        )
    except CheckoutAmountError as exc:
        param = "packId" if pack_id is not None else "usdAmount"
        raise PryvError(str(exc), code="invalid_params", param=param) from exc
    success_url, cancel_url = checkout_return_urls(settings.public_url, settings.dashboard_url)
    try:
        session = await platform.billing.create_checkout(
            wallet=wallet,
            account_id=str(ids.account_id(wallet)),
            usd_cents=amount.usd_cents,
            credits_micros=amount.credits_micros,
            pack_id=amount.pack_id,
            success_url=success_url,
            cancel_url=cancel_url,
            idempotency_key=idempotency_key,
        )
    except BillingUnavailable as exc:
        raise PryvError(
            "the payment provider did not create a checkout session; nothing was charged",
            code="billing_error",
            kind=ErrorKind.INTERNAL,
        ) from exc
    return {
        "object": "checkout_session",
        "id": session.id,
        "url": session.url,
        "usdAmount": usd_cents_text(amount.usd_micros),
        "credits": micros_to_usd(amount.credits_micros),
        "packId": amount.pack_id,
    }


def checkout_return_urls(public_url: str, dashboard_url: str | None) -> tuple[str, str]:
    """Where Stripe sends the buyer back: the dashboard's Credits page when there is a
    dashboard (it shows the payment's state and the credit arriving), else the API's own
    return pages. `{CHECKOUT_SESSION_ID}` is Stripe's template, filled in on redirect."""
    session = "session_id={CHECKOUT_SESSION_ID}"
    if dashboard_url:
        back = f"{dashboard_url.rstrip('/')}/checkout/return"
        return f"{back}?status=success&{session}", f"{back}?status=cancel&{session}"
    base = f"{public_url.rstrip('/')}/api/v1/billing"
    return f"{base}/success?{session}", f"{base}/cancel?{session}"


class CheckoutState(StrEnum):
    """What a buyer back from Stripe is told: `credited` once the webhook's credit is in the
    log; `paid` when Stripe has the money but its webhook has not arrived; `processing` for a
    delayed method; `unknown` for no such session (or, for a wallet, another wallet's)."""

    CREDITED = "credited"
    PAID = "paid"
    PROCESSING = "processing"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CheckoutStatus:
    state: CheckoutState
    usd_amount: str | None = None

    def document(self, session_id: str) -> dict[str, Any]:
        return {
            "object": "checkout_status",
            "id": session_id,
            "state": self.state.value,
            "usdAmount": self.usd_amount,
        }


async def checkout_status(
    platform: Platform, session_id: str, *, wallet: str | None = None
) -> CheckoutStatus:
    """The state of checkout `session_id`, asked of Stripe and of the log. With `wallet`, a
    session another wallet opened is `unknown` (the dashboard asks for the signed-in one)."""
    if not session_id or not platform.billing.configured:
        return CheckoutStatus(CheckoutState.UNKNOWN)
    try:
        session = await platform.billing.retrieve_session(session_id)
    except BillingUnavailable:
        session = None
    if session is None:
        return CheckoutStatus(CheckoutState.UNKNOWN)
    owner = str((session.get("metadata") or {}).get("pryv_wallet") or "")
    if wallet is not None and owner.lower() != wallet.lower():
        return CheckoutStatus(CheckoutState.UNKNOWN)
    amount = session_amount_text(session)
    if await asyncio.to_thread(platform.app.has_purchase, str(session.get("id") or session_id)):
        return CheckoutStatus(CheckoutState.CREDITED, amount)
    if session.get("payment_status") == "paid":
        return CheckoutStatus(CheckoutState.PAID, amount)
    return CheckoutStatus(CheckoutState.PROCESSING, amount)


def session_amount_text(session: dict[str, Any]) -> str:
    """ "12.34": what a Stripe Checkout Session charges, for the return pages."""
    return usd_cents_text(cents_to_micros(int(session.get("amount_total") or 0)))
