"""Questions an auditor asks of the log itself (no read model is trusted): an account's
balance at a moment, and every event that concerns one key. Both stream the log in pages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime

from commands.application import PryvApplication
from domain import ids
from domain.envelope import EventEnvelope
from infra.read_store_memory import MemoryReadStore
from projections import balance, ledger
from projections.ops import ProjectionWrite, SortedAdd

PAGE = 2000


async def log_events(app: PryvApplication, page_size: int = PAGE) -> AsyncIterator[EventEnvelope]:
    after = 0
    while True:
        page = await asyncio.to_thread(app.read_log, after, page_size)
        if not page:
            return
        for event in page:
            yield event
        after = page[-1].position


def _moment(event: EventEnvelope) -> datetime:
    return datetime.fromisoformat(event.timestamp)


async def balance_at(
    app: PryvApplication, account_id: str, env: str, at: datetime
) -> balance.Balance:
    """The account's balance as of `at`: its events up to then, folded by the very balance
    projection the gateway serves from (credited, debited, and holds still open at `at`)."""
    store = MemoryReadStore()
    async for event in log_events(app):
        if event.data.get("account_id") != account_id or _moment(event) > at:
            continue
        ops = tuple(balance.project(event))
        if ops:
            await store.apply([ProjectionWrite(balance.NAME, event.position, 0, ops)])
    return await balance.read_balance(store, account_id, env)


async def key_events(app: PryvApplication, key_id: str) -> AsyncIterator[EventEnvelope]:
    """Every event of the key (created, limits, revoked) and of its requests (holds placed and
    settled), in log order."""
    aggregate = str(ids.api_key_id(key_id))
    async for event in log_events(app):
        if event.originator_id == aggregate or event.data.get("key_id") == key_id:
            yield event


async def account_ledger(
    app: PryvApplication, account_id: str, month: str | None = None
) -> list[dict[str, object]]:
    """The account's ledger entries (the ledger projection's, folded from the log), oldest
    first; `month` ("YYYY-MM", UTC) keeps that month's."""
    entries: list[dict[str, object]] = []
    async for event in log_events(app):
        if event.data.get("account_id") != account_id:
            continue
        if month is not None and not event.timestamp.startswith(month):
            continue
        for op in ledger.project(event):
            if isinstance(op, SortedAdd):
                entries.append(json.loads(op.member))
    return entries
