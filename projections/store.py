"""The read store seen by projections and queries. Implemented in infra/ (memory, Redis)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from domain.errors import ErrorKind, PryvError
from projections.ops import Op, ProjectionPosition, ProjectionWrite


@dataclass(frozen=True)
class RebuildLease:
    """The one rebuild allowed at a time: `token` is a fencing token (it only grows), so a
    rebuild that lost its lease (it stalled past the TTL) can no longer write."""

    token: int
    owner: str
    expires_in: float  # seconds


class RebuildLeaseLost(PryvError):
    """A write fenced by a token that no longer holds the rebuild lease."""

    kind, code = ErrorKind.CONFLICT, "rebuild_lease_lost"


class ReadStore(Protocol):
    async def apply(
        self,
        writes: Sequence[ProjectionWrite],
        *,
        into: Mapping[str, int] | None = None,
        fence: int | None = None,
    ) -> int:
        """Apply writes atomically, each only if its position is beyond its projection's.

        Returns how many writes were applied (the rest were replays or redeliveries). `into`
        sends some projections' writes to another generation (a rebuild in progress); `fence`
        (a rebuild's lease token) makes the write refused unless that lease is still held.
        """
        ...

    async def apply_ops_atomically(self, ops: Sequence[Op]) -> None:
        """Apply ops outside any projection (admission undo, phantom-hold release)."""
        ...

    async def position(
        self, projection: str, generation: int | None = None
    ) -> ProjectionPosition: ...

    async def set_fence(self, position: int) -> None:
        """Admission refuses until the balance projection reaches `position` (read models being
        rebuilt from the bus are a replay in progress, not yet the truth)."""
        ...

    async def fence_position(self) -> int:
        """The position set by `set_fence` while it is still in force (0: none)."""
        ...

    async def generations(self) -> dict[str, int]:
        """The generation each projection is served from (absent = 0)."""
        ...

    async def swap_generation(
        self, projection: str, generation: int, *, fence: int | None = None
    ) -> bool:
        """Serve `projection` from `generation` — atomically, and only if it has caught up
        with the served one (else False: apply more and retry)."""
        ...

    async def drop_generation(
        self, projection: str, generation: int, *, fence: int | None = None
    ) -> int:
        """Delete a generation's keys; returns how many. Never the served one (ValueError)."""
        ...

    async def acquire_rebuild_lease(self, owner: str, ttl: float) -> RebuildLease | None:
        """The rebuild lease for `ttl` seconds, or None while another holds it."""
        ...

    async def renew_rebuild_lease(self, token: int, ttl: float) -> bool:
        """Extend the lease; False if `token` no longer holds it."""
        ...

    async def release_rebuild_lease(self, token: int) -> None: ...

    async def rebuild_lease(self) -> RebuildLease | None:
        """Who holds the rebuild lease now, if anyone."""
        ...

    async def get_fields(self, key: str) -> dict[str, str]: ...

    async def get_value(self, key: str) -> str | None: ...

    async def sorted_desc(
        self, key: str, *, below: int | None, limit: int
    ) -> list[tuple[int, str]]:
        """Members with the highest scores first, scores strictly below `below` when given."""
        ...

    async def sorted_by_score(self, key: str, *, max_score: int, limit: int) -> list[str]:
        """Members with score <= max_score, lowest first."""
        ...

    async def dump(self) -> dict[str, Any]:
        """Every read-model key and value in a canonical form (for replay comparisons)."""
        ...

    async def clear(self) -> None:
        """Drop every read model and position (a full replay follows)."""
        ...

    async def close(self) -> None: ...
