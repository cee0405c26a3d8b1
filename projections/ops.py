"""The read-model mutation vocabulary. Projections return these; read stores apply them atomically.

Small and store-neutral on purpose: each op maps to one or two Redis commands (run inside one Lua
call) and to a dict operation in memory, so the contract suite can prove both stores equivalent.
Amounts travel as Python ints here and as decimal strings inside the Redis script (Lua numbers are
doubles).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.json_codec import json_bytes


def json_line(entry: dict[str, Any]) -> str:
    """A sorted-set member (a ledger or activity line): compact JSON, keys sorted. A rebuild
    writes one line per event, and json's encoder was a fifth of its time."""
    return json_bytes(entry, sort_keys=True).decode()


@dataclass(frozen=True)
class SetFields:
    """HSET key field value…"""

    key: str
    fields: dict[str, str]


@dataclass(frozen=True)
class IncrField:
    """HINCRBY key field delta"""

    key: str
    field: str
    delta: int


@dataclass(frozen=True)
class SetValue:
    """SET key value"""

    key: str
    value: str


@dataclass(frozen=True)
class SortedAdd:
    """ZADD key score member (scores are log positions or epoch seconds: exact below 2**53)."""

    key: str
    score: int
    member: str


@dataclass(frozen=True)
class SortedRemove:
    key: str
    member: str


@dataclass(frozen=True)
class OpenHold:
    """Record hold `hold_key` and add its amount to the `held` field of each counter (the
    account's balance, the key's budget) — only if the hold is not recorded yet.

    Admission records the same hold before its event is projected; whichever comes first counts.
    """

    hold_key: str
    counter_keys: tuple[str, ...]
    expiry_key: str
    hold_id: str
    amount: int
    expires_epoch: int
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CloseHold:
    """Release a recorded hold: subtract its recorded amount from `held`; no-op if absent."""

    hold_key: str
    counter_keys: tuple[str, ...]
    expiry_key: str
    hold_id: str


Op = SetFields | IncrField | SetValue | SortedAdd | SortedRemove | OpenHold | CloseHold


@dataclass(frozen=True)
class ProjectionWrite:
    """All mutations one event causes in one projection, applied only if `position` is new to it."""

    projection: str
    position: int
    bus_seq: int
    ops: tuple[Op, ...]


@dataclass(frozen=True)
class ProjectionPosition:
    position: int = 0
    bus_seq: int = 0
