"""Wallet-signed management routes: keys, balance, ledger, settings. Thin: authenticate the
signature, call gateway.accounts, shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from api.context import platform_of
from api.management_schemas import (
    CreateKeyRequest,
    RevokeKeyRequest,
    RotateKeyRequest,
    SettingsUpdate,
    UpdateKeyRequest,
)
from api.wallet_auth import (
    WalletFields,
    WalletIdentity,
    authenticate_wallet,
    wallet_fields_from_request,
)
from domain import ids
from domain.wallet_messages import WalletAction
from gateway import accounts
from gateway.usage_report import UsageQuery, usage_report

router = APIRouter(prefix="/api/v1", tags=["management"])


async def _signed(
    request: Request, body: WalletFields | None, action: WalletAction, key_id: str = ""
) -> WalletIdentity:
    platform = platform_of(request)
    return await authenticate_wallet(
        wallet_fields_from_request(request, body),
        action=action,
        key_id=key_id,
        nonces=platform.nonces,
        limiter=platform.call_limits,
        per_minute=platform.settings.management_calls_per_minute,
    )


async def _auth(
    request: Request, body: WalletFields | None, action: WalletAction, key_id: str = ""
) -> str:
    return (await _signed(request, body, action, key_id)).wallet


@router.post("/keys", status_code=201)
async def create_key(request: Request, body: CreateKeyRequest) -> dict[str, Any]:
    """Create an API key. The full key is in this response only; it cannot be recovered."""
    signed = await _signed(request, body, WalletAction.CREATE)
    return await accounts.create_key(
        platform_of(request),
        signed.wallet,
        name=body.name,
        env=body.env,
        models=body.models,
        rpm=body.rpm,
        tpm=body.tpm,
        monthly_budget_usd=body.monthly_budget_usd,
        expires_at=body.expires_at,
        expires_in_days=body.expires_in_days,
        authorization=signed.evidence,
    )


@router.get("/keys")
async def list_keys(
    request: Request,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = Query(default=None),
) -> dict[str, Any]:
    """List the wallet's keys, newest first. Never includes secrets: prefix and last4 only."""
    wallet = await _auth(request, None, WalletAction.LIST)
    return await accounts.keys_page(
        platform_of(request).read_store, wallet, cursor=cursor, limit=limit
    )


@router.patch("/keys/{key_id}")
async def update_key(request: Request, key_id: str, body: UpdateKeyRequest) -> dict[str, Any]:
    """Change a key's (or an MCP connection's) name, models, RPM/TPM, monthly budget or
    expiry; fields left out keep their values, `null` clears a limit. Every instance applies
    the new terms before this answers."""
    signed = await _signed(request, body, WalletAction.UPDATE, key_id)
    return await accounts.update_key(
        platform_of(request), signed.wallet, key_id, body.changes(), signed.evidence
    )


@router.post("/keys/{key_id}/rotate")
async def rotate_key(request: Request, key_id: str, body: RotateKeyRequest) -> dict[str, Any]:
    """Roll a key: a new secret in this response only (same key id, limits and history); the
    current secret keeps working for `gracePeriodSeconds` (default 24 h, at most 7 days, 0 to
    stop it now), then every instance refuses it."""
    signed = await _signed(request, body, WalletAction.ROTATE, key_id)
    return await accounts.rotate_key(
        platform_of(request), signed.wallet, key_id, body.grace_period_seconds, signed.evidence
    )


@router.delete("/keys/{key_id}")
async def revoke_key(
    request: Request, key_id: str, body: RevokeKeyRequest | None = None
) -> dict[str, Any]:
    """Revoke a key; the very next request with it, on any instance, is refused."""
    signed = await _signed(request, body, WalletAction.REVOKE, key_id)
    reason = body.reason if body is not None else "revoked by owner"
    return await accounts.revoke_key(
        platform_of(request), signed.wallet, key_id, reason, signed.evidence
    )


@router.get("/settings")
async def get_settings(request: Request) -> dict[str, Any]:
    """The account's privacy defaults and consent."""
    wallet = await _auth(request, None, WalletAction.SETTINGS)
    return await accounts.account_settings(platform_of(request), wallet)


@router.put("/settings")
async def update_settings(request: Request, body: SettingsUpdate) -> dict[str, Any]:
    """Replace the given sections (privacy, consent); the others keep their values."""
    signed = await _signed(request, body, WalletAction.SETTINGS)
    sections: dict[str, Any] = {}
    if body.privacy is not None:
        sections["privacy"] = body.privacy.model_dump(by_alias=True, exclude_none=True)
    if body.consent is not None:
        sections["consent"] = body.consent.model_dump()
    if body.alerts is not None:  # a decimal string in the event (JSON primitives only)
        sections["alerts"] = body.alerts.model_dump(by_alias=True, mode="json")
    return await accounts.change_account_settings(
        platform_of(request), signed.wallet, sections, signed.evidence
    )


@router.get("/billing/balance")
async def get_balance(request: Request) -> dict[str, Any]:
    """Live and test balances. `available` = balance minus credit held by in-flight requests."""
    wallet = await _auth(request, None, WalletAction.BALANCE)
    return await accounts.balance_document(platform_of(request).read_store, wallet)


@router.get("/activity")
async def get_activity(
    request: Request,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = Query(default=None),
) -> dict[str, Any]:
    """The account's activity, newest first: keys created, changed, rolled and revoked,
    settings changed, MCP connections, purchases, grants, refunds and disputes — each with
    who allowed it (`by`: wallet, operator <address>, Stripe <event id>, a payment)."""
    wallet = await _auth(request, None, WalletAction.ACTIVITY)
    return await accounts.activity_page_document(
        platform_of(request).read_store, wallet, cursor=cursor, limit=limit
    )


@router.get("/usage", response_model=None)
async def get_usage(
    request: Request, query: Annotated[UsageQuery, Query()]
) -> dict[str, Any] | Response:
    """Spend, requests and tokens per UTC day, env, key and model in [from, to] (default the
    last 30 days, at most 366), filtered by env, keyId and model; `format=csv` for a file."""
    wallet = await _auth(request, None, WalletAction.USAGE)
    report = await usage_report(
        platform_of(request).read_store,
        str(ids.account_id(wallet)),
        query.filter(datetime.now(UTC).date()),
        as_csv=query.format == "csv",
    )
    if isinstance(report, str):
        return Response(report, media_type="text/csv; charset=utf-8")
    return report


@router.get("/billing/ledger")
async def get_ledger(
    request: Request,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = Query(default=None),
) -> dict[str, Any]:
    """Every posting on the account (purchases, grants, usage, refunds, disputes and their
    reversals), newest first, cursor-paginated."""
    wallet = await _auth(request, None, WalletAction.LEDGER)
    return await accounts.ledger_page(
        platform_of(request).read_store, wallet, cursor=cursor, limit=limit
    )
