"""The account's activity log, newest first: what was done to its keys, settings and money,
and on whose authority (the event's evidence: the wallet, an operator key, Stripe, a
payment). Score = log position, like the ledger, so pages are stable while entries arrive.
Usage holds are not activity (the ledger and usage pages have them)."""

from __future__ import annotations

import json
from typing import Any

from domain import topics
from domain.envelope import EventEnvelope
from projections import keys
from projections.ops import Op, SortedAdd, json_line
from projections.store import ReadStore

NAME = "activity"
SEGMENTS = ("activity",)

_KEY_TERMS = ("name", "models", "rpm", "tpm", "monthly_budget_micros", "expires_at")


def activity_key(account_id: str) -> str:
    return f"activity:{account_id}"


def _by(data: dict[str, Any]) -> dict[str, str]:
    """Who allowed it, from the evidence (never the signature itself)."""
    evidence = data.get("evidence") or {}
    kind = str(evidence.get("kind") or "")
    who = {
        "wallet": "wallet",
        "siwe": "wallet",
        "operator": f"operator {evidence.get('operator', '')}".strip(),
        "stripe": f"Stripe {evidence.get('event', '')}".strip(),
        "payment": f"{evidence.get('method', 'payment')} payment",
    }.get(kind, "")
    return {"by": who}


def _entry(account_id: str, event: EventEnvelope, action: str, **fields: Any) -> list[Op]:
    entry = {
        "id": f"ac_{event.position}",
        "position": event.position,
        "created_at": event.timestamp,
        "action": action,
        **_by(event.data),
        **fields,
    }
    line = json_line(entry)
    return [SortedAdd(activity_key(account_id), event.position, line)]


def project(event: EventEnvelope) -> list[Op]:
    data, topic = event.data, event.topic
    key_id = str(data.get("key_id") or "")
    if topic == topics.KEY_CREATED:
        return _entry(
            data["account_id"],
            event,
            "key.created",
            key_id=key_id,
            name=data["name"],
            env=data["env"],
        )
    account = str(data.get("account_id") or "")  # absent from key events before it existed
    if topic == topics.KEY_LIMITS_CHANGED and account:
        terms = {name: data.get(name) for name in _KEY_TERMS}
        return _entry(account, event, "key.updated", key_aggregate=event.originator_id, **terms)
    if topic == topics.KEY_ROLLED and account:
        expires = data["previous_expires_at"]
        return _entry(account, event, "key.rolled", key_id=key_id, previous_expires_at=expires)
    if topic == topics.KEY_REVOKED and account:
        reason = data["reason"]
        return _entry(
            account, event, "key.revoked", key_aggregate=event.originator_id, reason=reason
        )
    if topic == topics.ACCOUNT_SETTINGS_CHANGED:
        sections = sorted((data.get("settings") or {}).keys())
        return _entry(event.originator_id, event, "settings.changed", sections=sections)
    if topic == topics.ACCOUNT_CONNECTION_AUTHORIZED:
        return _entry(
            event.originator_id,
            event,
            "mcp.connected",
            key_id=key_id,
            client=data["client_name"],
            scopes=list(data["scopes"]),
        )
    if topic == topics.PURCHASE_COMPLETED:
        return _entry(
            data["account_id"],
            event,
            "credits.purchased",
            usd_micros=data["usd_micros"],
            credits_micros=data["credits_micros"],
        )
    if topic == topics.GRANT_GRANTED:
        return _entry(
            data["account_id"],
            event,
            "credits.granted",
            env=data["env"],
            amount_micros=data["amount_micros"],
            reason=data["reason"],
        )
    if topic == topics.REFUNDED:
        return _entry(data["account_id"], event, "payment.refunded", usd_micros=data["usd_micros"])
    if topic == topics.DISPUTE_OPENED:
        return _entry(data["account_id"], event, "payment.disputed", usd_micros=data["usd_micros"])
    if topic == topics.DISPUTE_REINSTATED:
        return _entry(data["account_id"], event, "dispute.won", usd_micros=data["usd_micros"])
    return []


async def activity_page(
    store: ReadStore, account_id: str, *, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Entries newest first, below position `before` (the cursor)."""
    rows = await store.sorted_desc(activity_key(account_id), below=before, limit=limit)
    out = []
    for _score, line in rows:
        entry: dict[str, Any] = json.loads(line)
        aggregate = entry.pop("key_aggregate", None)
        if aggregate:  # the event names its key by aggregate: show the key's public id
            record = await store.get_fields(keys.record_key(str(aggregate)))
            entry["key_id"] = record.get("key_id")
            entry.setdefault("name", record.get("name"))
        out.append(entry)
    return out
