"""Request bodies of the signed management API (camelCase, as the seed); the response shapes
are gateway.accounts'."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from api.wallet_auth import WalletFields
from gateway.accounts import Alerts, Consent, PrivacyDefaults

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


MAX_ROLL_GRACE_SECONDS = 7 * 24 * 3600  # Stripe's longest "roll key" expiration


class RotateKeyRequest(WalletFields):
    """How long the current secret keeps working beside the new one (0: it stops now)."""

    grace_period_seconds: int = Field(
        default=24 * 3600, ge=0, le=MAX_ROLL_GRACE_SECONDS, alias="gracePeriodSeconds"
    )


class SettingsUpdate(WalletFields):
    privacy: PrivacyDefaults | None = None
    consent: Consent | None = None
    alerts: Alerts | None = None


class UpdateKeyRequest(WalletFields):
    """The terms to change; a field left out keeps its value, `null` clears a limit."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    models: list[str] | None = Field(default=None, max_length=100)
    rpm: int | None = Field(default=None, ge=1, le=1_000_000)
    tpm: int | None = Field(default=None, ge=1, le=1_000_000_000)
    monthly_budget_usd: Decimal | None = Field(
        default=None, alias="monthlyBudgetUsd", gt=0, le=1_000_000, decimal_places=6
    )
    expires_at: datetime | None = Field(default=None, alias="expiresAt")

    def changes(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.model_fields_set & _TERMS}


_TERMS = frozenset({"name", "models", "rpm", "tpm", "monthly_budget_usd", "expires_at"})
