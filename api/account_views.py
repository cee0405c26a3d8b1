"""What a wallet's account looks like from outside: keys, balance, ledger — the same documents
for the wallet-signed management API and the dashboard's session reads."""

from __future__ import annotations

from typing import Any

from api.errors import ApiError
from api.management_schemas import balance_object, key_object, ledger_entry_object, page_object
from domain import ids
from projections import balance, keys, ledger
from projections.store import ReadStore


def parse_cursor(raw: str | None) -> int | None:
    """A `nextCursor` from a previous page (a log position), or None for the first page."""
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or int(raw) <= 0:
        raise ApiError(400, "invalid_params", "cursor must be a nextCursor value", param="cursor")
    return int(raw)


async def keys_page(
    store: ReadStore, wallet: str, *, cursor: str | None, limit: int
) -> dict[str, Any]:
    """The wallet's keys, newest first: prefix and last4, never a secret."""
    rows = await keys.list_keys(
        store, str(ids.account_id(wallet)), before=parse_cursor(cursor), limit=limit + 1
    )
    next_cursor = rows[limit - 1][0] if len(rows) > limit else None
    return page_object([key_object(record) for _pos, record in rows[:limit]], next_cursor)


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
    next_cursor = int(entries[limit - 1]["position"]) if len(entries) > limit else None
    return page_object([ledger_entry_object(e) for e in entries[:limit]], next_cursor)
