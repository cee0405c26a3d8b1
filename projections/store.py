"""The read store seen by projections and queries. Implemented in infra/ (memory, Redis)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from projections.ops import Op, ProjectionPosition, ProjectionWrite


class ReadStore(Protocol):
    async def apply(
        self, writes: Sequence[ProjectionWrite], *, into: Mapping[str, int] | None = None
    ) -> int:
        """Apply writes atomically, each only if its position is beyond its projection's.

        Returns how many writes were applied (the rest were replays or redeliveries). `into`
        sends some projections' writes to another generation (a rebuild in progress).
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

    async def swap_generation(self, projection: str, generation: int) -> bool:
        """Serve `projection` from `generation` — atomically, and only if it has caught up
        with the served one (else False: apply more and retry)."""
        ...

    async def drop_generation(self, projection: str, generation: int) -> int:
        """Delete a generation's keys (one no longer served); returns how many."""
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
