"""Call limits in this process (the embedded default has one API process)."""

from __future__ import annotations

from commands.call_limits import window_of


class MemoryCallLimiter:
    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}

    async def hit(self, subject: str, *, limit: int, window_seconds: int, now_s: int) -> int | None:
        window, remaining = window_of(now_s, window_seconds)
        for stale in [k for k in self._counts if k[1] < window]:  # earlier windows are done
            del self._counts[stale]
        count = self._counts.get((subject, window), 0) + 1
        self._counts[(subject, window)] = count
        return None if count <= limit else remaining

    async def close(self) -> None:
        self._counts.clear()
