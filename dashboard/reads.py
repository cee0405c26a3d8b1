"""Reads for the signed-in wallet, straight from the platform's projections (no signature: the
session is the authorization). Shapes are the management API's own (gateway.accounts)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from dashboard.context import context, current_session, now
from domain import ids
from domain.money import micros_to_usd
from gateway.accounts import (
    account_settings,
    activity_page_document,
    balance_document,
    keys_page,
    ledger_page,
)
from gateway.billing import checkout_status
from gateway.models import model_object
from gateway.usage_report import UsageQuery, usage_report
from projections import usage
from projections.store import ReadStore

router = APIRouter(prefix="/app/api", tags=["dashboard"])
ENVS = ("live", "test")


async def _wallet(request: Request) -> str:
    return (await current_session(request)).wallet


async def _account(request: Request) -> str:
    return str(ids.account_id(await _wallet(request)))


def _store(request: Request) -> ReadStore:
    return context(request).platform.read_store


@router.get("/keys")
async def list_keys(
    request: Request,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = Query(default=None),
) -> dict[str, Any]:
    """The wallet's keys, newest first: prefix and last4, never a secret."""
    return await keys_page(_store(request), await _wallet(request), cursor=cursor, limit=limit)


@router.get("/balance")
async def get_balance(request: Request) -> dict[str, Any]:
    return await balance_document(_store(request), await _wallet(request))


@router.get("/ledger")
async def get_ledger(
    request: Request,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = Query(default=None),
) -> dict[str, Any]:
    return await ledger_page(_store(request), await _wallet(request), cursor=cursor, limit=limit)


async def _day(store: ReadStore, account: str, env: str, day: str) -> dict[str, Any]:
    fields = await store.get_fields(usage.account_day_key(account, env, day))
    micros = int(fields.get("micros", 0))
    return {
        "micros": micros,
        "usd": micros_to_usd(micros),
        "requests": int(fields.get("requests", 0)),
        "tokensIn": int(fields.get("tokens_in", 0)),
        "tokensOut": int(fields.get("tokens_out", 0)),
    }


@router.get("/usage")
async def get_usage(request: Request, days: int = Query(default=14, ge=1, le=90)) -> dict[str, Any]:
    """Spend per UTC day (oldest first), live and test, from the usage projection."""
    account, store, today = await _account(request), _store(request), now().date()
    out = []
    for back in range(days - 1, -1, -1):
        day = (today - timedelta(days=back)).isoformat()
        out.append({"date": day, **{env: await _day(store, account, env, day) for env in ENVS}})
    return {"object": "usage", "days": out}


@router.get("/activity")
async def get_activity(
    request: Request,
    limit: int = Query(default=20, ge=1, le=100),
    cursor: str | None = Query(default=None),
) -> dict[str, Any]:
    return await activity_page_document(
        _store(request), await _wallet(request), cursor=cursor, limit=limit
    )


@router.get("/usage/report", response_model=None)
async def get_usage_report(
    request: Request, query: Annotated[UsageQuery, Query()]
) -> dict[str, Any] | Response:
    """Spend, requests and tokens per day, env, key and model in [from, to] (UTC days),
    filtered; `format=csv` downloads it."""
    wanted = query.filter(now().date())
    account = await _account(request)
    report = await usage_report(_store(request), account, wanted, as_csv=query.format == "csv")
    if isinstance(report, str):
        filename = f"pryv-usage-{wanted.start}-{wanted.end}.csv"
        return Response(
            report,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return report


@router.get("/checkout/{session_id}")
async def get_checkout(request: Request, session_id: str) -> dict[str, Any]:
    """Where a checkout of the signed-in wallet stands (another wallet's is `unknown`)."""
    session_id = session_id[:256]
    platform = context(request).platform
    status = await checkout_status(platform, session_id, wallet=await _wallet(request))
    return status.document(session_id)


@router.get("/settings")
async def get_settings(request: Request) -> dict[str, Any]:
    return await account_settings(context(request).platform, await _wallet(request))


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    """The whole catalog (public information: prices, context length, test-only flag)."""
    return {
        "object": "list",
        "data": [model_object(m) for m in context(request).platform.catalog.models],
    }
