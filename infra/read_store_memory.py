"""In-memory read store for the embedded default: plain dicts, rebuilt from the log at start.

Keys are stored under their physical names (`<owner>.<generation>:<logical>`, see
projections/keyspace.py) exactly like the Redis store, so generations and rebuilds behave the
same in both.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Mapping, Sequence
from typing import Any

from projections import balance
from projections.keyspace import UNOWNED, logical, owner_of
from projections.ops import (
    CloseHold,
    IncrField,
    Op,
    OpenHold,
    ProjectionPosition,
    ProjectionWrite,
    SetFields,
    SetValue,
    SortedAdd,
    SortedRemove,
)
from projections.store import RebuildLease, RebuildLeaseLost

_POSITION_PREFIX = "pos:"
SETTLED_KEY = "holds:settled"  # as in the Redis store's scripts


class MemoryReadStore:
    def __init__(self) -> None:
        self._hashes: dict[str, dict[str, str]] = {}
        self._values: dict[str, str] = {}
        self._sorted: dict[str, dict[str, int]] = {}
        self._generations: dict[str, int] = {}
        self._settled: dict[str, set[str]] = {}  # rebuild-only tombstones, per generation
        self.fence = 0  # see set_fence
        self._lock = asyncio.Lock()
        self._lease: tuple[int, str, float] | None = None  # token, owner, expiry (monotonic)
        self._lease_tokens = 0

    # --- key mapping -----------------------------------------------------------------------

    def _phys(self, key: str, into: Mapping[str, int] | None = None) -> str:
        owner = owner_of(key)
        generation = 0 if owner == UNOWNED else self._generations.get(owner, 0)
        if into and owner in into:
            generation = into[owner]
        return f"{owner}.{generation}:{key}"

    # --- writes ----------------------------------------------------------------------------

    async def apply(
        self,
        writes: Sequence[ProjectionWrite],
        *,
        into: Mapping[str, int] | None = None,
        fence: int | None = None,
    ) -> int:
        async with self._lock:  # no await inside: each call is atomic w.r.t. readers
            self._check_fence(fence)
            applied = 0
            for write in writes:
                pos_key = self._phys(_POSITION_PREFIX + write.projection, into)
                current = int(self._hashes.get(pos_key, {}).get("position", "0"))
                if write.position <= current:
                    continue
                for op in write.ops:
                    self._apply_op(op, into)
                self._hashes[pos_key] = {
                    "position": str(write.position),
                    "bus_seq": str(write.bus_seq),
                }
                applied += 1
            return applied

    def apply_op(self, op: Op) -> None:
        """One op, synchronously, into the current generations (the in-memory admission)."""
        self._apply_op(op, None)

    def _apply_op(self, op: Op, into: Mapping[str, int] | None) -> None:
        def k(key: str) -> str:
            return self._phys(key, into)

        if isinstance(op, SetFields):
            if op.fields:  # like HSET: no fields, no key
                self._hashes.setdefault(k(op.key), {}).update(op.fields)
        elif isinstance(op, IncrField):
            fields = self._hashes.setdefault(k(op.key), {})
            fields[op.field] = str(int(fields.get(op.field, "0")) + op.delta)
        elif isinstance(op, SetValue):
            self._values[k(op.key)] = op.value
        elif isinstance(op, SortedAdd):
            self._sorted.setdefault(k(op.key), {})[op.member] = op.score
        elif isinstance(op, SortedRemove):
            self._sorted_remove(k(op.key), op.member)
        elif isinstance(op, OpenHold):
            if k(op.hold_key) in self._hashes:
                return
            self._hashes[k(op.hold_key)] = {**op.fields, "amount": str(op.amount)}
            for counter in op.counter_keys:
                self._apply_op(IncrField(counter, "held", op.amount), into)
            self._sorted.setdefault(k(op.expiry_key), {})[op.hold_id] = op.expires_epoch
        elif isinstance(op, CloseHold):
            if into:  # a generation being rebuilt remembers what it saw settled (see swap)
                self._settled.setdefault(k(SETTLED_KEY), set()).add(op.hold_id)
            hold = self._hashes.pop(k(op.hold_key), None)
            if hold is None:
                return
            for counter in op.counter_keys:
                self._apply_op(IncrField(counter, "held", -int(hold["amount"])), into)
            self._sorted_remove(k(op.expiry_key), op.hold_id)
        else:  # pragma: no cover - exhaustiveness guard
            raise TypeError(f"unknown op {op!r}")

    def _sorted_remove(self, key: str, member: str) -> None:
        members = self._sorted.get(key)
        if members is not None:
            members.pop(member, None)
            if not members:
                del self._sorted[key]

    async def apply_ops_atomically(self, ops: Sequence[Op]) -> None:
        for op in ops:
            self.apply_op(op)

    # --- generations -----------------------------------------------------------------------

    async def set_fence(self, position: int) -> None:
        self.fence = position

    async def fence_position(self) -> int:
        return self.fence

    async def generations(self) -> dict[str, int]:
        return dict(self._generations)

    async def swap_generation(
        self, projection: str, generation: int, *, fence: int | None = None
    ) -> bool:
        """Serve `projection` from `generation`, if it has caught up with the live one."""
        async with self._lock:
            self._check_fence(fence)
            into = {projection: generation}
            pos = _POSITION_PREFIX + projection
            new = self._hashes.get(self._phys(pos, into), {})
            old = self._hashes.get(self._phys(pos), {})
            if int(new.get("position", 0)) < int(old.get("position", 0)):
                return False
            if new:  # the bus resumes from the live projector's place, never beyond it
                new["bus_seq"] = old.get("bus_seq", new.get("bus_seq", "0"))
            if projection == balance.NAME:
                self._carry_admitted_holds(into)
            self._generations[projection] = generation
            return True

    def _carry_admitted_holds(self, into: Mapping[str, int]) -> None:
        """Holds admission recorded whose Placed event the new generation has not seen yet."""
        settled = self._settled.pop(self._phys(SETTLED_KEY, into), set())
        for hold_id in list(self._sorted.get(self._phys(balance.EXPIRY_KEY), {})):
            fields = self._hashes.get(self._phys(balance.hold_key(hold_id)))
            if fields is None or hold_id in settled:
                continue
            if self._phys(balance.hold_key(hold_id), into) in self._hashes:
                continue
            placed = {**fields, "amount_micros": fields["amount"]}
            self._apply_op(balance.open_hold(hold_id, placed), into)

    async def drop_generation(
        self, projection: str, generation: int, *, fence: int | None = None
    ) -> int:
        self._check_fence(fence)
        if self._generations.get(projection, 0) == generation:
            raise ValueError(f"generation {generation} of {projection} is the one served")
        prefix = f"{projection}.{generation}:"
        dropped = 0
        for store in (self._hashes, self._values, self._sorted, self._settled):
            for key in [k for k in store if k.startswith(prefix)]:
                del store[key]
                dropped += 1
        return dropped

    # --- the rebuild lease -------------------------------------------------------------------

    def _check_fence(self, fence: int | None) -> None:
        if fence is None:
            return
        lease = self._live_lease()
        if lease is None or lease[0] != fence:
            raise RebuildLeaseLost("this rebuild no longer holds the rebuild lease")

    def _live_lease(self) -> tuple[int, str, float] | None:
        if self._lease is not None and self._lease[2] <= time.monotonic():
            self._lease = None
        return self._lease

    async def acquire_rebuild_lease(self, owner: str, ttl: float) -> RebuildLease | None:
        if self._live_lease() is not None:
            return None
        self._lease_tokens += 1
        self._lease = (self._lease_tokens, owner, time.monotonic() + ttl)
        return RebuildLease(self._lease_tokens, owner, ttl)

    async def renew_rebuild_lease(self, token: int, ttl: float) -> bool:
        lease = self._live_lease()
        if lease is None or lease[0] != token:
            return False
        self._lease = (token, lease[1], time.monotonic() + ttl)
        return True

    async def release_rebuild_lease(self, token: int) -> None:
        lease = self._live_lease()
        if lease is not None and lease[0] == token:
            self._lease = None

    async def rebuild_lease(self) -> RebuildLease | None:
        lease = self._live_lease()
        if lease is None:
            return None
        return RebuildLease(lease[0], lease[1], max(lease[2] - time.monotonic(), 0.0))

    # --- reads -----------------------------------------------------------------------------

    async def position(self, projection: str, generation: int | None = None) -> ProjectionPosition:
        into = None if generation is None else {projection: generation}
        fields = self._hashes.get(self._phys(_POSITION_PREFIX + projection, into), {})
        return ProjectionPosition(int(fields.get("position", 0)), int(fields.get("bus_seq", 0)))

    async def get_fields(self, key: str) -> dict[str, str]:
        return self.read_fields(key)

    def read_fields(self, key: str) -> dict[str, str]:
        """Synchronous read, for steps that must not yield between read and write (admission)."""
        return dict(self._hashes.get(self._phys(key), {}))

    async def get_value(self, key: str) -> str | None:
        return self._values.get(self._phys(key))

    def _ordered(self, physical_key: str) -> list[tuple[int, str]]:
        return sorted(
            (score, member) for member, score in self._sorted.get(physical_key, {}).items()
        )

    async def sorted_desc(
        self, key: str, *, below: int | None, limit: int
    ) -> list[tuple[int, str]]:
        ordered = self._ordered(self._phys(key))
        if below is not None:
            ordered = ordered[: bisect.bisect_left(ordered, (below, ""))]
        return list(reversed(ordered[-limit:])) if limit > 0 else []

    async def sorted_by_score(self, key: str, *, max_score: int, limit: int) -> list[str]:
        return [m for s, m in self._ordered(self._phys(key)) if s <= max_score][: max(limit, 0)]

    def _current(self, physical_key: str) -> str | None:
        """The logical key, if `physical_key` is in a generation being served (else None)."""
        owner, generation, key = logical(physical_key)
        served = 0 if owner == UNOWNED else self._generations.get(owner, 0)
        return key if generation == served else None

    async def dump(self) -> dict[str, Any]:
        """Canonical contents of every served read model; positions are bookkeeping, left out."""
        out: dict[str, Any] = {}
        for physical_key, fields in self._hashes.items():
            key = self._current(physical_key)
            if key is not None and fields and not key.startswith(_POSITION_PREFIX):
                out[key] = dict(sorted(fields.items()))
        for physical_key, value in self._values.items():
            key = self._current(physical_key)
            if key is not None:
                out[key] = value
        for physical_key in self._sorted:
            key = self._current(physical_key)
            if key is not None:
                out[key] = [[score, member] for score, member in self._ordered(physical_key)]
        return dict(sorted(out.items()))

    async def clear(self) -> None:
        async with self._lock:
            self._hashes.clear()
            self._values.clear()
            self._sorted.clear()
            self._settled.clear()
            self._generations.clear()

    async def close(self) -> None:
        return None
