"""A wallet's account from outside — keys, balance, ledger, privacy defaults — and the
commands its owner runs on it (create and revoke keys, change settings): the same documents
for the wallet-signed management API, the dashboard and the other doors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bootstrap.platform import Platform
from commands.key_terms import budget_micros, key_expiry
from commands.positions import wait_until_applied
from commands.results import InvalidCommand, NotFound
from domain import alert_webhooks, ids
from domain.api_keys import is_valid_key_id
from domain.errors import ErrorKind, PryvError
from domain.evidence import Authorization, Presented
from domain.money import micros_to_usd
from infra.operator_key import operator_signer
from privacy.controls import PII_ENTITY_TYPES, PiiConfig
from projections import activity, balance, keys, ledger, ratelimit_config, usage
from projections import settings as settings_projection
from projections.balance import Balance
from projections.keys import KeyRecord, new_key_record
from projections.store import ReadStore


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
        "rolledAt": record.rolled_at,
        "previousSecretExpiresAt": record.previous_expires_at,
        "kind": "mcp_connection" if record.connection_client else "api_key",
        "client": record.connection_client,
        "scopes": list(record.connection_scopes) or None,
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


class Alerts(BaseModel):
    """When credit runs low: below `lowBalanceUsd` of live credit available (null: never) the
    dashboard shows a banner and, with `webhookUrl`, a signed `balance.low` event is POSTed
    there once per fall below (docs/management-api.md)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    low_balance_usd: Decimal | None = Field(
        default=None, alias="lowBalanceUsd", ge=0, le=1_000_000, decimal_places=6
    )
    webhook_url: str | None = Field(
        default=None, alias="webhookUrl", max_length=2048, pattern=r"^https?://[^\s]+$"
    )


def settings_object(stored: dict[str, Any], *, webhook_secret: str | None = None) -> dict[str, Any]:
    """The settings as the account saved them; with a webhook URL, `alerts.webhookSecret` is
    the secret its events are signed with."""
    privacy = PrivacyDefaults.model_validate(stored.get("privacy") or {})
    consent = Consent.model_validate(stored.get("consent") or {})
    alerts = Alerts.model_validate(stored.get("alerts") or {})
    shown_alerts = alerts.model_dump(by_alias=True, mode="json")
    if alerts.webhook_url and webhook_secret:
        shown_alerts["webhookSecret"] = webhook_secret
    return {
        "object": "settings",
        "privacy": privacy.model_dump(by_alias=True, exclude_none=True),
        "consent": consent.model_dump(),
        "alerts": shown_alerts,
    }


def parse_cursor(raw: str | None) -> int | None:
    """A `nextCursor` from a previous page (a log position), or None for the first page."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or int(raw) <= 0:
        raise PryvError("cursor must be a nextCursor value", code="invalid_params", param="cursor")
    return int(raw)


async def keys_page(
    store: ReadStore, wallet: str, *, cursor: str | None, limit: int
) -> dict[str, Any]:
    """The wallet's keys, newest first: prefix and last4, never a secret."""
    rows = await keys.list_keys(
        store, str(ids.account_id(wallet)), before=parse_cursor(cursor), limit=limit + 1
    )
    next_cursor = rows[limit - 1][0] if len(rows) > limit else None
    month = datetime.now(UTC).strftime("%Y-%m")
    data = []
    for _pos, record in rows[:limit]:
        spent = await usage.key_month_spend(store, record.key_id, month)
        data.append({**key_object(record), "monthSpendUsd": micros_to_usd(spent)})
    return page_object(data, next_cursor)


async def balance_document(store: ReadStore, wallet: str) -> dict[str, Any]:
    """Live and test balances; `available` = balance minus credit held by in-flight requests."""
    account = str(ids.account_id(wallet))
    live = await balance.read_balance(store, account, "live")
    test = await balance.read_balance(store, account, "test")
    return {
        "object": "balance",
        "walletAddress": wallet,
        "currency": "usd",
        **balance_object(live),
        "test": balance_object(test),
    }


async def ledger_page(
    store: ReadStore, wallet: str, *, cursor: str | None, limit: int
) -> dict[str, Any]:
    """Every posting on the account, newest first, cursor-paginated."""
    entries = await ledger.ledger_page(
        store, str(ids.account_id(wallet)), before=parse_cursor(cursor), limit=limit + 1
    )
    return _position_page(entries, limit, ledger_entry_object)


async def activity_page_document(
    store: ReadStore, wallet: str, *, cursor: str | None, limit: int
) -> dict[str, Any]:
    """What was done on the account (keys, settings, money) and by whom, newest first."""
    entries = await activity.activity_page(
        store, str(ids.account_id(wallet)), before=parse_cursor(cursor), limit=limit + 1
    )
    return _position_page(entries, limit, activity_entry_object)


def activity_entry_object(entry: dict[str, Any]) -> dict[str, Any]:
    return {**{_camel(k): v for k, v in entry.items()}, "object": "activity"}


def _position_page(
    entries: list[dict[str, Any]], limit: int, shape: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """A page of log-ordered entries read with one extra (`limit + 1`): the extra one says
    there is more, and the last shown entry's position is the next cursor."""
    next_cursor = int(entries[limit - 1]["position"]) if len(entries) > limit else None
    return page_object([shape(e) for e in entries[:limit]], next_cursor)


class KeyNotFound(PryvError):
    kind, code = ErrorKind.NOT_FOUND, "key_not_found"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no key {key_id!r} for this wallet", param="keyId")


async def create_key(
    platform: Platform,
    wallet: str,
    *,
    name: str,
    env: str,
    models: list[str],
    rpm: int | None,
    tpm: int | None,
    monthly_budget_usd: Decimal | None,
    expires_at: datetime | None,
    expires_in_days: int | None,
    authorization: Authorization,
) -> dict[str, Any]:
    """A new key's api_key object with its token (`key`): the only time the token is shown."""
    expiry = key_expiry(expires_at, expires_in_days)
    try:
        created = await asyncio.to_thread(
            platform.app.create_key,
            wallet=wallet,
            name=name,
            env=env,
            models=models,
            rpm=rpm,
            tpm=tpm,
            monthly_budget_micros=budget_micros(monthly_budget_usd),
            expires_at=expiry,
            pepper=platform.settings.key_pepper,
            authorization=authorization,
        )
    except InvalidCommand as exc:
        raise PryvError(str(exc), code="invalid_params") from exc
    await _welcome(platform, wallet)
    # Read-your-writes for the list that usually follows; the key exists either way.
    assert created.result.position is not None
    await wait_until_applied(
        platform.read_store,
        keys.NAME,
        created.result.position,
        platform.settings.revocation_wait_seconds,
    )
    return {**key_object(new_key_record(created.key)), "key": created.issued.token}


WELCOME_REASON = "welcome"


async def _welcome(platform: Platform, wallet: str) -> None:
    """A new wallet's test credit (PRYV_WELCOME_CREDIT_USD), granted once per wallet ever
    (its grant ref is the wallet) and signed with the operator key like any grant."""
    amount = platform.settings.welcome_credit_micros
    ref = f"{WELCOME_REASON}:{wallet.lower()}"
    if amount <= 0 or await asyncio.to_thread(platform.app.has_grant, ref):
        return  # a read, not a write that collides, for every later key of the wallet
    await asyncio.to_thread(
        platform.app.grant_credits,
        wallet=wallet,
        env="test",
        amount_micros=amount,
        reason=WELCOME_REASON,
        granted_by=WELCOME_REASON,
        grant_ref=ref,
        authorization=operator_signer(platform.settings),
    )


async def update_key(
    platform: Platform,
    wallet: str,
    key_id: str,
    changes: dict[str, Any],
    authorization: Authorization,
) -> dict[str, Any]:
    """Change some of a key's (or a connection's) terms: name, models, rpm, tpm,
    monthly_budget_usd, expires_at; a given None clears a limit. Answers once every instance's
    admission sees the new terms (read-your-writes, like revocation)."""
    if not is_valid_key_id(key_id):
        raise KeyNotFound(key_id)
    terms = dict(changes)
    if "monthly_budget_usd" in terms:
        terms["monthly_budget_micros"] = budget_micros(terms.pop("monthly_budget_usd"))
    if terms.get("expires_at") is not None:
        terms["expires_at"] = key_expiry(terms["expires_at"], None)
    try:
        result = await asyncio.to_thread(
            platform.app.change_key_limits,
            wallet=wallet,
            key_id=key_id,
            changes=terms,
            authorization=authorization,
        )
    except NotFound as exc:
        raise KeyNotFound(key_id) from exc
    except InvalidCommand as exc:
        raise PryvError(str(exc), code="invalid_params") from exc
    if result.position is not None:
        for name in (keys.NAME, ratelimit_config.NAME):
            await wait_until_applied(
                platform.read_store,
                name,
                result.position,
                platform.settings.revocation_wait_seconds,
            )
    record = await keys.read_key(platform.read_store, key_id)
    if record is None:
        raise KeyNotFound(key_id)
    return {**key_object(record), "unchanged": result.duplicate}


async def rotate_key(
    platform: Platform,
    wallet: str,
    key_id: str,
    grace_seconds: int,
    authorization: Authorization,
) -> dict[str, Any]:
    """A new secret for the key (its api_key object with the token as `key`, shown once);
    the old secret works until `previousSecretExpiresAt`. Answers once the key index has the
    roll, so admission on every instance already knows when the old secret stops."""
    if not is_valid_key_id(key_id):
        raise KeyNotFound(key_id)
    previous_expires_at = datetime.now(UTC) + timedelta(seconds=grace_seconds)
    try:
        rolled = await asyncio.to_thread(
            platform.app.roll_key,
            wallet=wallet,
            key_id=key_id,
            previous_expires_at=previous_expires_at,
            pepper=platform.settings.key_pepper,
            authorization=authorization,
        )
    except NotFound as exc:
        raise KeyNotFound(key_id) from exc
    except InvalidCommand as exc:
        raise PryvError(str(exc), code="invalid_params") from exc
    assert rolled.result.position is not None
    await wait_until_applied(
        platform.read_store,
        keys.NAME,
        rolled.result.position,
        platform.settings.revocation_wait_seconds,
    )
    record = await keys.read_key(platform.read_store, key_id)
    if record is None:
        raise KeyNotFound(key_id)
    return {**key_object(record), "key": rolled.issued.token}


async def revoke_key(
    platform: Platform, wallet: str, key_id: str, reason: str, authorization: Authorization
) -> dict[str, Any]:
    """Revoke a key: the Revoked event is recorded and, in the same call, the key is marked
    revoked where every API instance's admission looks, so the very next request with it — on
    any instance — is refused, without waiting for the key index to catch up."""
    if not is_valid_key_id(key_id):
        raise KeyNotFound(key_id)
    try:
        result = await asyncio.to_thread(
            platform.app.revoke_key,
            wallet=wallet,
            key_id=key_id,
            reason=reason,
            authorization=authorization,
        )
    except NotFound as exc:
        raise KeyNotFound(key_id) from exc
    # Marked after the event is durable (a mark without its event would be a revocation
    # nobody can audit); if marking fails the call fails and the retry is idempotent.
    await platform.meter.revoke(key_id)
    record = await keys.read_key(platform.read_store, key_id)
    shown = key_object(record) if record else {"id": key_id, "object": "api_key"}
    if shown.get("status") != "revoked":  # the key index has not applied it yet
        shown["status"] = "revoked"
        shown["revokedAt"] = datetime.now(UTC).isoformat()
    return {**shown, "deleted": True, "alreadyRevoked": result.duplicate}


async def account_settings(platform: Platform, wallet: str) -> dict[str, Any]:
    """The account's privacy defaults, consent and alerts (with the webhook's secret)."""
    account = str(ids.account_id(wallet))
    stored = await settings_projection.read_settings(platform.read_store, account)
    secret = alert_webhooks.signing_secret(platform.settings.key_pepper, account)
    return settings_object(stored, webhook_secret=secret)


async def change_account_settings(
    platform: Platform, wallet: str, sections: dict[str, Any], evidence: Presented
) -> dict[str, Any]:
    """Replace the given sections (privacy, consent); the others keep their values."""
    try:
        result = await asyncio.to_thread(
            platform.app.change_settings, wallet, sections, evidence=evidence
        )
    except InvalidCommand as exc:
        raise PryvError(str(exc), code="conflict", kind=ErrorKind.CONFLICT) from exc
    assert result.position is not None
    await wait_until_applied(
        platform.read_store,
        settings_projection.NAME,
        result.position,
        platform.settings.revocation_wait_seconds,
    )
    return await account_settings(platform, wallet)
