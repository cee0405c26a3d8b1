"""Spend per key per calendar month (budgets) and per account per day (usage charts), UTC."""

from __future__ import annotations

from domain import topics
from domain.envelope import EventEnvelope
from projections.ops import IncrField, Op
from projections.store import ReadStore

NAME = "usage"
# First segments of the keys this projection owns (projections/keyspace.py).
SEGMENTS = ("spend", "usage")


def key_month_key(key_id: str, month: str) -> str:
    return f"spend:{key_id}:{month}"


def account_day_key(account_id: str, env: str, day: str) -> str:
    return f"usage:{account_id}:{env}:{day}"


def project(event: EventEnvelope) -> list[Op]:
    if event.topic == topics.CHANNEL_SPENT:  # an MPP session increment: no key
        data = event.data
        key = account_day_key(data["account_id"], data["env"], event.timestamp[:10])
        return [
            IncrField(key, "micros", data["delta"]),
            IncrField(key, "tokens_in", data["tokens_in"]),
            IncrField(key, "tokens_out", data["tokens_out"]),
        ]
    if event.topic != topics.HOLD_SETTLED:
        return []
    data = event.data
    month, day = event.timestamp[:7], event.timestamp[:10]
    ops: list[Op] = []
    for key in (
        key_month_key(data["key_id"], month),
        account_day_key(data["account_id"], data["env"], day),
    ):
        ops += [
            IncrField(key, "micros", data["actual_micros"]),
            IncrField(key, "requests", 1),
            IncrField(key, "tokens_in", data["tokens_in"]),
            IncrField(key, "tokens_out", data["tokens_out"]),
        ]
    return ops


async def key_month_spend(store: ReadStore, key_id: str, month: str) -> int:
    """Micro-USD a key's settlements debited in `month` ("YYYY-MM", UTC)."""
    fields = await store.get_fields(key_month_key(key_id, month))
    return int(fields.get("micros") or 0)
