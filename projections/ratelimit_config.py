"""Per-key limits the admission step reads on every request: RPM, TPM, monthly budget."""

from __future__ import annotations

from domain import topics
from domain.envelope import EventEnvelope
from projections.ops import Op, SetFields

NAME = "ratelimit_config"
# First segments of the keys this projection owns (projections/keyspace.py).
SEGMENTS = ("limits",)


def limits_key(key_aggregate_id: str) -> str:
    return f"limits:{key_aggregate_id}"


def project(event: EventEnvelope) -> list[Op]:
    if event.topic not in (topics.KEY_CREATED, topics.KEY_LIMITS_CHANGED):
        return []
    data = event.data
    fields = {
        name: "" if data[name] is None else str(data[name])
        for name in ("rpm", "tpm", "monthly_budget_micros")
    }
    return [SetFields(limits_key(event.originator_id), fields)]
