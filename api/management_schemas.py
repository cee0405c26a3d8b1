"""Request bodies and response shapes of the signed management API (camelCase, as the seed)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.wallet_auth import WalletFields
from domain.money import micros_to_usd
from privacy.controls import PII_ENTITY_TYPES, PiiConfig
from projections.balance import Balance
from projections.keys import KeyRecord

MODEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$"


class CreateKeyRequest(WalletFields):
    name: str = Field(default="Secret key", min_length=1, max_length=100)
    env: Literal["live", "test"] = "live"
    models: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Model ids this key may call; empty means every model of its env.",
    )
    rpm: int | None = Field(default=None, ge=1, le=1_000_000, description="Requests per minute")
    tpm: int | None = Field(default=None, ge=1, le=1_000_000_000, description="Tokens per minute")
    monthly_budget_usd: Decimal | None = Field(
        default=None,
        alias="monthlyBudgetUsd",
        gt=0,
        le=1_000_000,
        decimal_places=6,
    )
    expires_at: datetime | None = Field(default=None, alias="expiresAt")
    expires_in_days: int | None = Field(default=None, alias="expiresInDays", ge=1, le=3650)


class RevokeKeyRequest(WalletFields):
    reason: str = Field(default="revoked by owner", max_length=200)


def key_object(record: KeyRecord) -> dict[str, Any]:
    budget = record.monthly_budget_micros
    return {
        "id": record.key_id,
        "object": "api_key",
        "name": record.name,
        "env": record.env,
        "prefix": record.prefix,
        "last4": record.last4,
        "status": record.status,
        "models": list(record.models),
        "rpm": record.rpm,
        "tpm": record.tpm,
        "monthlyBudgetMicros": budget,
        "monthlyBudgetUsd": None if budget is None else micros_to_usd(budget),
        "expiresAt": record.expires_at,
        "createdAt": record.created_at,
        "lastUsedAt": record.last_used_at,
        "revokedAt": record.revoked_at,
    }


def balance_object(balance: Balance) -> dict[str, Any]:
    return {
        "creditedMicros": balance.credited_micros,
        "debitedMicros": balance.debited_micros,
        "heldMicros": balance.held_micros,
        "balanceMicros": balance.balance_micros,
        "availableMicros": balance.available_micros,
        "balanceUsd": micros_to_usd(balance.balance_micros),
        "availableUsd": micros_to_usd(balance.available_micros),
    }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def ledger_entry_object(entry: dict[str, Any]) -> dict[str, Any]:
    out = {_camel(k): v for k, v in entry.items()}
    out["object"] = "ledger_entry"
    out["amountUsd"] = micros_to_usd(int(entry["amount_micros"]))
    if entry.get("shortfall_micros"):
        out["shortfallUsd"] = micros_to_usd(int(entry["shortfall_micros"]))
    return out


def page_object(data: list[dict[str, Any]], next_cursor: int | None) -> dict[str, Any]:
    return {
        "object": "list",
        "data": data,
        "hasMore": next_cursor is not None,
        "nextCursor": None if next_cursor is None else str(next_cursor),
    }


class PrivacyDefaults(BaseModel):
    """Applied to every request of the account that does not say otherwise."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    mode: Literal["redact", "pseudonymize", "off"] = "redact"
    pii_entities: list[str] | None = Field(default=None, alias="piiEntities", max_length=64)
    pii_config: PiiConfig | None = Field(default=None, alias="piiConfig")

    @field_validator("pii_entities")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or []) - PII_ENTITY_TYPES)
        if unknown:
            raise ValueError(f"unknown PII entity types: {', '.join(unknown)}")
        return value


class Consent(BaseModel):
    """Recorded consent; Pryv stores no prompts or answers whatever these say."""

    model_config = ConfigDict(extra="forbid")
    analytics: bool = False
    marketing: bool = False


class SettingsUpdate(WalletFields):
    privacy: PrivacyDefaults | None = None
    consent: Consent | None = None


def settings_object(stored: dict[str, Any]) -> dict[str, Any]:
    privacy = PrivacyDefaults.model_validate(stored.get("privacy") or {})
    consent = Consent.model_validate(stored.get("consent") or {})
    return {
        "object": "settings",
        "privacy": privacy.model_dump(by_alias=True, exclude_none=True),
        "consent": consent.model_dump(),
    }
