"""A new key's terms as its owner states them (an expiry date or a number of days, a monthly
budget in USD), checked and made exact, for every door that creates keys (API, dashboard, CLI)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from domain.errors import PryvError
from domain.money import usd_to_micros


class InvalidKeyTerms(PryvError):
    code = "invalid_params"


def key_expiry(
    expires_at: datetime | None, expires_in_days: int | None, *, now: datetime | None = None
) -> datetime | None:
    """When the key stops working: `expires_at` (timezone-aware, in the future) or
    `expires_in_days` from now; never both; None for no expiry."""
    now = now or datetime.now(UTC)
    if expires_in_days is not None:
        if expires_at is not None:
            raise InvalidKeyTerms(
                "give expiresAt or expiresInDays, not both", param="expiresInDays"
            )
        return now + timedelta(days=expires_in_days)
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise InvalidKeyTerms("expiresAt needs a timezone", param="expiresAt")
    if expires_at <= now:
        raise InvalidKeyTerms("expiresAt is in the past", param="expiresAt")
    return expires_at


def budget_micros(monthly_budget_usd: Decimal | str | None) -> int | None:
    """The monthly budget in micro-USD (exact; more than six decimals is an error)."""
    return None if monthly_budget_usd is None else usd_to_micros(monthly_budget_usd)
