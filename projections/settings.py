"""Account settings (privacy defaults, consent, retention) as the account last saved them."""

from __future__ import annotations

import json
from typing import Any

from domain import topics
from domain.envelope import EventEnvelope
from projections.ops import Op, SetFields, SortedAdd, SortedRemove
from projections.store import ReadStore

NAME = "settings"
# First segments of the keys this projection owns (projections/keyspace.py).
SEGMENTS = ("settings",)


def settings_key(account_id: str) -> str:
    return f"settings:{account_id}"


# The accounts with a low-balance webhook (workers/alerts.py walks them), scored by position.
ALERT_WEBHOOKS_KEY = "settings:alert-webhooks"


def project(event: EventEnvelope) -> list[Op]:
    if event.topic != topics.ACCOUNT_SETTINGS_CHANGED:
        return []
    settings = event.data["settings"]
    document = json.dumps(settings, separators=(",", ":"), sort_keys=True)
    account = event.originator_id
    alerts = settings.get("alerts") or {}
    watched: Op = (
        SortedAdd(ALERT_WEBHOOKS_KEY, event.position, account)
        if alerts.get("webhookUrl") and alerts.get("lowBalanceUsd") is not None
        else SortedRemove(ALERT_WEBHOOKS_KEY, account)
    )
    return [
        SetFields(settings_key(account), {"json": document, "updated_at": event.timestamp}),
        watched,
    ]


async def alert_webhook_accounts(store: ReadStore, *, limit: int = 10_000) -> list[str]:
    """Accounts with both a low-balance threshold and a webhook URL."""
    return await store.sorted_by_score(ALERT_WEBHOOKS_KEY, max_score=2**53, limit=limit)


async def read_settings(store: ReadStore, account_id: str) -> dict[str, Any]:
    fields = await store.get_fields(settings_key(account_id))
    return dict(json.loads(fields["json"])) if fields.get("json") else {}
