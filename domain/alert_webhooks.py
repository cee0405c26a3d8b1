"""Low-balance webhooks: the event body a user's endpoint receives and its signature.

Signed like Stripe's webhooks (`Pryv-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`)
so receivers can reuse what they know: check the HMAC with the account's signing secret, and
refuse a `t` too far from their clock (replay). The secret is derived from the deployment's
pepper and the account, so every process computes it without storing one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

SIGNATURE_HEADER = "Pryv-Signature"
EVENT_TYPE = "balance.low"


def signing_secret(pepper: bytes, account_id: str) -> str:
    """`whsec_…`: the account's webhook signing secret (shown in its settings)."""
    digest = hmac.new(pepper, f"alert-webhook:{account_id}".encode(), hashlib.sha256)
    return "whsec_" + digest.hexdigest()[:48]


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does (and the tests): the `v1` HMAC over `t` and the raw body."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if not parts.get("t", "").isdigit() or "v1" not in parts:
        return False
    expected = signature_header(secret, int(parts["t"]), body).rsplit("v1=", 1)[1]
    return hmac.compare_digest(expected, parts["v1"])


def low_balance_event(
    *,
    event_id: str,
    account_id: str,
    created: int,
    available_usd: str,
    threshold_usd: str,
) -> bytes:
    """The JSON body: one `balance.low` event each time live credit falls below the threshold."""
    document: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "type": EVENT_TYPE,
        "created": created,
        "data": {
            "accountId": account_id,
            "env": "live",
            "currency": "usd",
            "availableUsd": available_usd,
            "thresholdUsd": threshold_usd,
        },
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
