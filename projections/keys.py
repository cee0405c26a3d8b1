"""Key index (secret hash -> key), key records, and each account's key list (newest first).

Records are hashes keyed by the ApiKey aggregate id, so LimitsChanged/Revoked events (which carry
only the originator id) update them without a read. Never holds the secret: only its HMAC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from domain import ids, topics
from domain.aggregates import ApiKey
from domain.envelope import EventEnvelope
from projections.ops import Op, SetFields, SetValue, SortedAdd
from projections.store import ReadStore

NAME = "keys"
# First segments of the keys this projection owns (projections/keyspace.py).
SEGMENTS = ("key", "keyhash", "keys")


def record_key(aggregate_id: str) -> str:
    return f"key:{aggregate_id}"


def hash_key(secret_hash: str) -> str:
    return f"keyhash:{secret_hash}"


def account_keys_key(account_id: str) -> str:
    return f"keys:{account_id}"


def _opt(value: object) -> str:
    return "" if value is None else str(value)


def _epoch(iso: object) -> str:
    """Expiry as epoch seconds too, so admission (Lua) compares numbers, not ISO strings."""
    return "" if iso is None else str(int(datetime.fromisoformat(str(iso)).timestamp()))


_LIMITS = ("expires_at", "name", "models", "rpm", "tpm", "monthly_budget_micros")


def _limits_fields(data: Mapping[str, object]) -> dict[str, str]:
    return {
        "expires_epoch": _epoch(data["expires_at"]),
        "name": str(data["name"]),
        "models": json.dumps(data["models"]),
        "rpm": _opt(data["rpm"]),
        "tpm": _opt(data["tpm"]),
        "monthly_budget_micros": _opt(data["monthly_budget_micros"]),
        "expires_at": _opt(data["expires_at"]),
    }


_CREATED = ("key_id", "account_id", "wallet", "env", "prefix", "last4", "secret_hash")


def _created_fields(data: Mapping[str, object], created_at: str) -> dict[str, str]:
    return {
        **{name: str(data[name]) for name in _CREATED},
        "status": "active",
        "created_at": created_at,
        **_limits_fields(data),
    }


def new_key_record(key: ApiKey) -> KeyRecord:
    """The record this projection writes for a key just created, built by the same mapping
    (for read-your-writes while the index catches up); without the secret's hash."""
    data = {name: getattr(key, name) for name in (*_CREATED, *_LIMITS)}
    data["secret_hash"] = ""
    return KeyRecord.from_fields(_created_fields(data, key.created_on.isoformat()))


def project(event: EventEnvelope) -> list[Op]:
    data = event.data
    record = record_key(event.originator_id)
    if event.topic == topics.KEY_CREATED:
        fields = _created_fields(data, event.timestamp)
        return [
            SetFields(record, fields),
            SetValue(hash_key(data["secret_hash"]), data["key_id"]),
            SortedAdd(account_keys_key(data["account_id"]), event.position, data["key_id"]),
        ]
    if event.topic == topics.ACCOUNT_CONNECTION_AUTHORIZED:
        connection = {
            "connection_client": str(data["client_name"]),
            "connection_client_id": str(data["client_id"]),
            "connection_scopes": " ".join(data["scopes"]),
        }
        return [SetFields(record_key(str(ids.api_key_id(str(data["key_id"])))), connection)]
    if event.topic == topics.KEY_LIMITS_CHANGED:
        return [SetFields(record, {**_limits_fields(data), "updated_at": event.timestamp})]
    if event.topic == topics.KEY_ROLLED:
        # The new secret finds the key; the old one still does, and admission lets it in only
        # until previous_expires_epoch (so a grace of "now" ends on every instance at once).
        rolled = {
            "secret_hash": str(data["secret_hash"]),
            "last4": str(data["last4"]),
            "previous_hash": str(data["previous_secret_hash"]),
            "previous_expires_at": str(data["previous_expires_at"]),
            "previous_expires_epoch": _epoch(data["previous_expires_at"]),
            "rolled_at": event.timestamp,
        }
        return [
            SetFields(record, rolled),
            SetValue(hash_key(str(data["secret_hash"])), str(data["key_id"])),
        ]
    if event.topic == topics.KEY_REVOKED:
        return [SetFields(record, {"status": "revoked", "revoked_at": event.timestamp})]
    if event.topic == topics.HOLD_SETTLED:
        aggregate = str(ids.api_key_id(data["key_id"]))
        return [SetFields(record_key(aggregate), {"last_used_at": event.timestamp})]
    return []


def _opt_int(raw: str) -> int | None:
    return int(raw) if raw else None


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    account_id: str
    wallet: str
    name: str
    env: str
    prefix: str
    last4: str
    secret_hash: str
    status: str
    models: tuple[str, ...]
    rpm: int | None
    tpm: int | None
    monthly_budget_micros: int | None
    expires_at: str | None
    created_at: str
    revoked_at: str | None
    last_used_at: str | None
    connection_client: str | None = None  # an MCP client's connection, not a key for /v1
    connection_scopes: tuple[str, ...] = ()
    rolled_at: str | None = None
    previous_expires_at: str | None = None  # until then the secret before the roll works too

    def usable_now(self, now: datetime | None = None) -> bool:
        """Active and not past its expiry."""
        if self.status != "active":
            return False
        if self.expires_at is None:
            return True
        return datetime.fromisoformat(self.expires_at) > (now or datetime.now(UTC))

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> KeyRecord:
        return cls(
            key_id=fields["key_id"],
            account_id=fields["account_id"],
            wallet=fields["wallet"],
            name=fields["name"],
            env=fields["env"],
            prefix=fields["prefix"],
            last4=fields["last4"],
            secret_hash=fields["secret_hash"],
            status=fields["status"],
            models=tuple(json.loads(fields["models"])),
            rpm=_opt_int(fields["rpm"]),
            tpm=_opt_int(fields["tpm"]),
            monthly_budget_micros=_opt_int(fields["monthly_budget_micros"]),
            expires_at=fields["expires_at"] or None,
            created_at=fields["created_at"],
            revoked_at=fields.get("revoked_at") or None,
            last_used_at=fields.get("last_used_at") or None,
            connection_client=fields.get("connection_client") or None,
            connection_scopes=tuple((fields.get("connection_scopes") or "").split()),
            rolled_at=fields.get("rolled_at") or None,
            previous_expires_at=fields.get("previous_expires_at") or None,
        )


async def read_key(store: ReadStore, key_id: str) -> KeyRecord | None:
    fields = await store.get_fields(record_key(str(ids.api_key_id(key_id))))
    return KeyRecord.from_fields(fields) if fields else None


async def read_key_by_hash(store: ReadStore, secret_hash: str) -> KeyRecord | None:
    key_id = await store.get_value(hash_key(secret_hash))
    return await read_key(store, key_id) if key_id else None


async def list_keys(
    store: ReadStore, account_id: str, *, before: int | None = None, limit: int = 100
) -> list[tuple[int, KeyRecord]]:
    """An account's keys, newest first, with their creation positions (the pagination cursor)."""
    page = await store.sorted_desc(account_keys_key(account_id), below=before, limit=limit)
    out = []
    for position, key_id in page:
        record = await read_key(store, key_id)
        if record is not None:
            out.append((position, record))
    return out
