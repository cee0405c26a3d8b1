"""Buying credit: the packs on sale and a Stripe Checkout Session for one of them or a custom
amount, for any door (the HTTP API, the dashboard, MCP). Credit arrives with the payment's
webhook (commands.billing), never with these calls."""

from __future__ import annotations

from decimal import Decimal
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
    base = f"{settings.public_url}/api/v1/billing"
    try:
        session = await platform.billing.create_checkout(
            wallet=wallet,
            account_id=str(ids.account_id(wallet)),
            usd_cents=amount.usd_cents,
            credits_micros=amount.credits_micros,
            pack_id=amount.pack_id,
            success_url=f"{base}/success?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{base}/cancel?session_id={{CHECKOUT_SESSION_ID}}",
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


def session_amount_text(session: dict[str, Any]) -> str:
    """ "12.34": what a Stripe Checkout Session charges, for the return pages."""
    return usd_cents_text(cents_to_micros(int(session.get("amount_total") or 0)))
