"""Credit packs (fixed USD prices, possibly with bonus credit) and custom checkout amounts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.errors import PryvError
from domain.money import (
    MoneyError,
    is_whole_cents,
    micros_to_cents,
    micros_to_usd,
    usd_cents_text,
    usd_to_micros,
)


class CheckoutAmountError(PryvError, ValueError):
    """An amount the checkout refuses (bounds, more than cent precision, unknown pack)."""

    code = "invalid_params"


@dataclass(frozen=True)
class CreditPack:
    id: str
    usd_micros: int
    credits_micros: int
    label: str

    def public(self) -> dict[str, str]:
        return {
            "id": self.id,
            "usd": usd_cents_text(self.usd_micros),
            "credits": micros_to_usd(self.credits_micros),
            "label": self.label,
        }


@dataclass(frozen=True)
class CheckoutAmount:
    usd_micros: int
    credits_micros: int
    pack_id: str | None

    @property
    def usd_cents(self) -> int:
        return micros_to_cents(self.usd_micros)


def parse_packs(document: Mapping[str, Any]) -> tuple[CreditPack, ...]:
    packs = []
    for entry in document.get("packs", []):
        try:
            usd, credits = usd_to_micros(str(entry["usd"])), usd_to_micros(str(entry["credits"]))
        except (KeyError, MoneyError) as exc:
            raise ValueError(f"credit pack {entry.get('id')!r}: {exc}") from exc
        if usd <= 0 or credits < usd or not is_whole_cents(usd):
            raise ValueError(f"credit pack {entry.get('id')!r}: bad usd/credits")
        packs.append(CreditPack(str(entry["id"]), usd, credits, str(entry.get("label", ""))))
    return tuple(packs)


def checkout_amount(
    *,
    usd_amount: Decimal | None,
    pack_id: str | None,
    packs: Sequence[CreditPack],
    min_usd_micros: int,
    max_usd_micros: int,
) -> CheckoutAmount:
    """What a checkout charges and credits: a pack, or a custom amount credited 1:1."""
    if (usd_amount is None) == (pack_id is None):
        raise CheckoutAmountError("give exactly one of usdAmount or packId")
    if pack_id is not None:
        for pack in packs:
            if pack.id == pack_id:
                return CheckoutAmount(pack.usd_micros, pack.credits_micros, pack.id)
        raise CheckoutAmountError(f"unknown credit pack {pack_id!r}")
    assert usd_amount is not None
    try:
        micros = usd_to_micros(usd_amount)
    except MoneyError as exc:
        raise CheckoutAmountError(str(exc)) from exc
    if not is_whole_cents(micros):
        raise CheckoutAmountError("usdAmount has more than cent precision")
    if not min_usd_micros <= micros <= max_usd_micros:
        raise CheckoutAmountError(
            f"usdAmount must be between {usd_cents_text(min_usd_micros)} and "
            f"{usd_cents_text(max_usd_micros)}"
        )
    return CheckoutAmount(micros, micros, None)
