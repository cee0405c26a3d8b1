"""Ledger entries per account, newest first: every posting that moves a balance, with its source.

Score = log position, so the cursor is a position and pages are stable while new entries arrive.
"""

from __future__ import annotations

import json
from typing import Any

from domain import topics
from domain.envelope import EventEnvelope
from projections.ops import Op, SortedAdd, json_line
from projections.store import ReadStore

NAME = "ledger"
# First segments of the keys this projection owns (projections/keyspace.py).
SEGMENTS = ("ledger",)


def ledger_key(account_id: str) -> str:
    return f"ledger:{account_id}"


def _entry(event: EventEnvelope, **fields: Any) -> str:
    entry = {
        "id": f"le_{event.position}",
        "position": event.position,
        "created_at": event.timestamp,
        **fields,
    }
    return json_line(entry)


def project(event: EventEnvelope) -> list[Op]:
    data = event.data
    if event.topic == topics.PURCHASE_COMPLETED:
        entry = _entry(
            event,
            type="purchase",
            env="live",
            amount_micros=data["credits_micros"],
            usd_micros=data["usd_micros"],
            source=data["source"],
            source_id=data["source_id"],
            payment_intent=data.get("payment_intent"),
        )
    elif event.topic == topics.GRANT_GRANTED:
        entry = _entry(
            event,
            type="grant",
            env=data["env"],
            amount_micros=data["amount_micros"],
            source="grant",
            source_id=data["grant_ref"],
            reason=data["reason"],
        )
    elif event.topic == topics.REFUNDED:
        entry = _entry(
            event,
            type="refund",
            env="live",
            amount_micros=-data["credits_micros"],
            usd_micros=-data["usd_micros"],
            source="stripe",
            source_id=data["charge_id"],
        )
    elif event.topic == topics.DISPUTE_OPENED:
        entry = _entry(
            event,
            type="dispute",
            env="live",
            amount_micros=-data["credits_micros"],
            usd_micros=-data["usd_micros"],
            source="stripe",
            source_id=data["dispute_id"],
            charge_id=data["charge_id"],
            reason=data["reason"],
        )
    elif event.topic == topics.DISPUTE_REINSTATED:
        entry = _entry(
            event,
            type="dispute_reversal",
            env="live",
            amount_micros=data["credits_micros"],
            usd_micros=data["usd_micros"],
            source="stripe",
            source_id=data["dispute_id"],
            charge_id=data["charge_id"],
            status=data["status"],
        )
    elif event.topic == topics.HOLD_SETTLED:
        entry = _entry(
            event,
            type="usage",
            env=data["env"],
            amount_micros=-data["actual_micros"],
            request_id=data["request_id"],
            key_id=data["key_id"],
            model=data["model"],
            tokens_in=data["tokens_in"],
            tokens_out=data["tokens_out"],
            outcome=data["outcome"],
            estimated=data["estimated"],
            pii_redacted=data.get("pii_counts") or {},
            # Usage the upstream reported beyond the hold: not charged, shown to finance.
            **(
                {"shortfall_micros": data["shortfall_micros"]}
                if data.get("shortfall_micros")
                else {}
            ),
        )
    elif event.topic == topics.CHANNEL_SPENT:
        # One increment of an MPP session: paid by the channel's voucher as it was consumed.
        entry = _entry(
            event,
            type="session",
            env=data["env"],
            amount_micros=0,
            paid_micros=data["delta"],
            spent_micros=data["delta"],
            source="tempo-session",
            source_id=data["channel_id"],
            request_id=data["request_id"],
            model=data["model"],
            tokens_in=data["tokens_in"],
            tokens_out=data["tokens_out"],
        )
    else:
        return []
    return [SortedAdd(ledger_key(data["account_id"]), event.position, entry)]


async def ledger_page(
    store: ReadStore, account_id: str, *, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Up to `limit` entries older than position `before` (newest first)."""
    rows = await store.sorted_desc(ledger_key(account_id), below=before, limit=limit)
    entries: list[dict[str, Any]] = [json.loads(member) for _score, member in rows]
    return entries
