"""Wallet-signed management routes: keys, balance, ledger. Thin: authenticate, command, shape."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query, Request

from api.account_views import balance_document, keys_page, ledger_page
from api.context import platform_of
from api.errors import ApiError
from api.management_schemas import (
    CreateKeyRequest,
    RevokeKeyRequest,
    SettingsUpdate,
    key_object,
    settings_object,
)
from api.wallet_auth import WalletFields, authenticate_wallet, wallet_fields_from_request
from commands.positions import wait_until_applied
from commands.results import InvalidCommand, NotFound
from domain import ids
from domain.api_keys import is_valid_key_id
from domain.money import usd_to_micros
from domain.wallet_messages import WalletAction
from projections import keys
from projections import settings as settings_projection
from projections.keys import KeyRecord

router = APIRouter(prefix="/api/v1", tags=["management"])


async def _auth(
    request: Request, body: WalletFields | None, action: WalletAction, key_id: str = ""
) -> str:
    platform = platform_of(request)
    identity = await authenticate_wallet(
        wallet_fields_from_request(request, body),
        action=action,
        key_id=key_id,
        nonces=platform.nonces,
    )
    return identity.wallet


@router.post("/keys", status_code=201)
async def create_key(request: Request, body: CreateKeyRequest) -> dict[str, Any]:
    """Create an API key. The full key is in this response only; it cannot be recovered."""
    wallet = await _auth(request, body, WalletAction.CREATE)
    platform = platform_of(request)
    expires_at = body.expires_at
    if body.expires_in_days is not None:
        if expires_at is not None:
            raise ApiError(
                400,
                "invalid_params",
                "give expiresAt or expiresInDays, not both",
                param="expiresInDays",
            )
        expires_at = datetime.now(UTC) + timedelta(days=body.expires_in_days)
    if expires_at is not None:
        if expires_at.tzinfo is None:
            raise ApiError(400, "invalid_params", "expiresAt needs a timezone", param="expiresAt")
        if expires_at <= datetime.now(UTC):
            raise ApiError(400, "invalid_params", "expiresAt is in the past", param="expiresAt")
    budget = None if body.monthly_budget_usd is None else usd_to_micros(body.monthly_budget_usd)
    try:
        created = await asyncio.to_thread(
            platform.app.create_key,
            wallet=wallet,
            name=body.name,
            env=body.env,
            models=body.models,
            rpm=body.rpm,
            tpm=body.tpm,
            monthly_budget_micros=budget,
            expires_at=expires_at,
            pepper=platform.settings.key_pepper,
        )
    except InvalidCommand as exc:
        raise ApiError(400, "invalid_params", str(exc)) from exc
    # Read-your-writes for the list that usually follows; the key exists either way.
    assert created.result.position is not None
    await wait_until_applied(
        platform.read_store,
        keys.NAME,
        created.result.position,
        platform.settings.revocation_wait_seconds,
    )
    key = created.key
    record = KeyRecord(
        key_id=key.key_id,
        account_id=key.account_id,
        wallet=key.wallet,
        name=key.name,
        env=key.env,
        prefix=key.prefix,
        last4=key.last4,
        secret_hash="",
        status="active",
        models=tuple(key.models),
        rpm=key.rpm,
        tpm=key.tpm,
        monthly_budget_micros=key.monthly_budget_micros,
        expires_at=key.expires_at,
        created_at=key.created_on.isoformat(),
        revoked_at=None,
        last_used_at=None,
    )
    return {**key_object(record), "key": created.issued.token}


@router.get("/keys")
async def list_keys(
    request: Request,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = Query(default=None),
) -> dict[str, Any]:
    """List the wallet's keys, newest first. Never includes secrets: prefix and last4 only."""
    wallet = await _auth(request, None, WalletAction.LIST)
    return await keys_page(platform_of(request).read_store, wallet, cursor=cursor, limit=limit)


@router.delete("/keys/{key_id}")
async def revoke_key(
    request: Request, key_id: str, body: RevokeKeyRequest | None = None
) -> dict[str, Any]:
    """Revoke a key: the Revoked event is recorded and, in the same call, the key is marked
    revoked where every API instance's admission looks, so the very next request with it — on
    any instance — is refused, without waiting for the key index to catch up."""
    wallet = await _auth(request, body, WalletAction.REVOKE, key_id)
    platform = platform_of(request)
    if not is_valid_key_id(key_id):
        raise ApiError(404, "key_not_found", f"no key {key_id!r} for this wallet", param="keyId")
    reason = body.reason if body is not None else "revoked by owner"
    try:
        result = await asyncio.to_thread(
            platform.app.revoke_key, wallet=wallet, key_id=key_id, reason=reason
        )
    except NotFound as exc:
        raise ApiError(
            404, "key_not_found", f"no key {key_id!r} for this wallet", param="keyId"
        ) from exc
    # Marked after the event is durable (a mark without its event would be a revocation
    # nobody can audit); if marking fails the call fails and the retry is idempotent.
    await platform.meter.revoke(key_id)
    record = await keys.read_key(platform.read_store, key_id)
    shown = key_object(record) if record else {"id": key_id, "object": "api_key"}
    if shown.get("status") != "revoked":  # the key index has not applied it yet
        shown["status"] = "revoked"
        shown["revokedAt"] = datetime.now(UTC).isoformat()
    return {**shown, "deleted": True, "alreadyRevoked": result.duplicate}


@router.get("/settings")
async def get_settings(request: Request) -> dict[str, Any]:
    """The account's privacy defaults and consent."""
    wallet = await _auth(request, None, WalletAction.SETTINGS)
    stored = await settings_projection.read_settings(
        platform_of(request).read_store, str(ids.account_id(wallet))
    )
    return settings_object(stored)


@router.put("/settings")
async def update_settings(request: Request, body: SettingsUpdate) -> dict[str, Any]:
    """Replace the given sections (privacy, consent); the others keep their values."""
    wallet = await _auth(request, body, WalletAction.SETTINGS)
    platform = platform_of(request)
    sections: dict[str, Any] = {}
    if body.privacy is not None:
        sections["privacy"] = body.privacy.model_dump(by_alias=True, exclude_none=True)
    if body.consent is not None:
        sections["consent"] = body.consent.model_dump()
    try:
        result = await asyncio.to_thread(platform.app.change_settings, wallet, sections)
    except InvalidCommand as exc:
        raise ApiError(409, "conflict", str(exc)) from exc
    assert result.position is not None
    await wait_until_applied(
        platform.read_store,
        settings_projection.NAME,
        result.position,
        platform.settings.revocation_wait_seconds,
    )
    stored = await settings_projection.read_settings(
        platform.read_store, str(ids.account_id(wallet))
    )
    return settings_object(stored)


@router.get("/billing/balance")
async def get_balance(request: Request) -> dict[str, Any]:
    """Live and test balances. `available` = balance minus credit held by in-flight requests."""
    wallet = await _auth(request, None, WalletAction.BALANCE)
    return await balance_document(platform_of(request).read_store, wallet)


@router.get("/billing/ledger")
async def get_ledger(
    request: Request,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = Query(default=None),
) -> dict[str, Any]:
    """Every posting on the account (purchases, grants, usage, refunds, disputes and their
    reversals), newest first, cursor-paginated."""
    wallet = await _auth(request, None, WalletAction.LEDGER)
    return await ledger_page(platform_of(request).read_store, wallet, cursor=cursor, limit=limit)
