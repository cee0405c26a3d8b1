"""Account settings (privacy defaults, consent, retention) as the account last saved them."""

from __future__ import annotations

import json
from typing import Any

from domain import topics
from domain.envelope import EventEnvelope
from projections.ops import Op, SetFields
from projections.store import ReadStore

NAME = "settings"
# First segments of the keys this projection owns (projections/keyspace.py).
SEGMENTS = ("settings",)


def settings_key(account_id: str) -> str:
    return f"settings:{account_id}"


def project(event: EventEnvelope) -> list[Op]:
    if event.topic != topics.ACCOUNT_SETTINGS_CHANGED:
        return []
    document = json.dumps(event.data["settings"], separators=(",", ":"), sort_keys=True)
    return [
        SetFields(
            settings_key(event.originator_id), {"json": document, "updated_at": event.timestamp}
        )
    ]


async def read_settings(store: ReadStore, account_id: str) -> dict[str, Any]:
    fields = await store.get_fields(settings_key(account_id))
    return dict(json.loads(fields["json"])) if fields.get("json") else {}
