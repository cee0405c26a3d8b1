"""Integer micro-USD money. Floats never touch a balance: every amount is an int of 1e-6 USD."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal, InvalidOperation

from domain.errors import PryvError

MICROS_PER_USD = 1_000_000
BILLING_CURRENCY = "usd"  # the one currency Pryv sells credit in (Stripe's lower-case code)
TOKENS_PER_PRICE_UNIT = 1_000_000  # prices are quoted per 1M tokens, like OpenAI's price list


MICROS_PER_CENT = 10_000  # Stripe counts USD in cents (its "minor units")


class MoneyError(PryvError, ValueError):
    """An amount that cannot be represented exactly in micro-USD, or is out of range."""

    code = "invalid_amount"


def usd_to_micros(amount: str | int | Decimal) -> int:
    """Parse USD ("12.34", 5, Decimal) exactly; over 6 decimals is an error, never rounded."""
    if isinstance(amount, bool):
        raise MoneyError("amount must be a number, not a boolean")
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation as exc:
        raise MoneyError(f"not a decimal amount: {amount!r}") from exc
    if not value.is_finite():
        raise MoneyError(f"not a finite amount: {amount!r}")
    micros = value * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise MoneyError(f"more precision than one micro-USD: {amount!r}")
    return int(micros)


def cents_to_micros(cents: int) -> int:
    """USD cents (Stripe's minor units) as micro-USD: the one place that conversion lives."""
    return cents * MICROS_PER_CENT


def micros_to_cents(micros: int) -> int:
    """Whole cents in `micros` (callers check cent precision with `is_whole_cents`)."""
    return micros // MICROS_PER_CENT


def is_whole_cents(micros: int) -> bool:
    return micros % MICROS_PER_CENT == 0


def usd_cents_text(micros: int) -> str:
    """ "12.34": a cent-precise amount for people (checkout pages, pack prices)."""
    return micros_to_usd(micros)[:-4]


def micros_to_usd(micros: int) -> str:
    """Render micros as a fixed 6-decimal USD string ("-0.050000"), exact, for JSON and CSV."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_USD)
    return f"{sign}{whole}.{frac:06d}"


def token_cost_micros(tokens: int, price_per_million_micros: int) -> int:
    """Cost of `tokens` at a per-1M-token price, rounded up: never undercharge by a fraction."""
    if tokens < 0 or price_per_million_micros < 0:
        raise MoneyError("tokens and prices are never negative")
    quotient = Decimal(tokens * price_per_million_micros) / TOKENS_PER_PRICE_UNIT
    return int(quotient.to_integral_value(rounding=ROUND_CEILING))
