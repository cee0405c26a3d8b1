"""Spend per key per calendar month (budgets), per account per day (usage charts) and per
account per day broken down by env, key, model (usage analytics, CSV export), UTC."""

from __future__ import annotations

from domain import topics
from domain.envelope import EventEnvelope
from projections.ops import IncrField, Op
from projections.store import ReadStore

NAME = "usage"
# First segments of the keys this projection owns (projections/keyspace.py).
SEGMENTS = ("spend", "usage", "usagebd")
METRICS = ("micros", "requests", "tokens_in", "tokens_out")
_SEP = "\x1f"  # between env, key id and model in a breakdown field (model ids may hold "/")


def breakdown_key(account_id: str, day: str) -> str:
    return f"usagebd:{account_id}:{day}"


def breakdown_field(env: str, key_id: str, model: str, metric: str) -> str:
    return _SEP.join((env, key_id, model, metric))


def split_breakdown_field(name: str) -> tuple[str, str, str, str] | None:
    parts = name.split(_SEP)
    if len(parts) != 4:
        return None
    return parts[0], parts[1], parts[2], parts[3]


def _breakdown(account_id: str, day: str, env: str, key_id: str, model: str, **by: int) -> list[Op]:
    key = breakdown_key(account_id, day)
    return [IncrField(key, breakdown_field(env, key_id, model, m), v) for m, v in by.items()]


def key_month_key(key_id: str, month: str) -> str:
    return f"spend:{key_id}:{month}"


def account_day_key(account_id: str, env: str, day: str) -> str:
    return f"usage:{account_id}:{env}:{day}"


def project(event: EventEnvelope) -> list[Op]:
    if event.topic == topics.CHANNEL_SPENT:  # an MPP session increment: no key
        data = event.data
        day = event.timestamp[:10]
        key = account_day_key(data["account_id"], data["env"], day)
        return [
            IncrField(key, "micros", data["delta"]),
            IncrField(key, "tokens_in", data["tokens_in"]),
            IncrField(key, "tokens_out", data["tokens_out"]),
            *_breakdown(
                data["account_id"],
                day,
                data["env"],
                "",  # paid per voucher on a channel, not through a key
                str(data.get("model") or ""),
                micros=data["delta"],
                tokens_in=data["tokens_in"],
                tokens_out=data["tokens_out"],
            ),
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
    ops += _breakdown(
        data["account_id"],
        day,
        data["env"],
        data["key_id"],
        data["model"],
        micros=data["actual_micros"],
        requests=1,
        tokens_in=data["tokens_in"],
        tokens_out=data["tokens_out"],
    )
    return ops


async def key_month_spend(store: ReadStore, key_id: str, month: str) -> int:
    """Micro-USD a key's settlements debited in `month` ("YYYY-MM", UTC)."""
    fields = await store.get_fields(key_month_key(key_id, month))
    return int(fields.get("micros") or 0)
