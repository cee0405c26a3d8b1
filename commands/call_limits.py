"""Call limits per subject (a wallet's management calls): N per fixed window, shared by every
API instance through the limiter's backend. Coarser than admission's sliding RPM window on
purpose — it is a brake on abuse (a script creating hundreds of keys), not a billing limit."""

from __future__ import annotations

from typing import Protocol


class CallLimiter(Protocol):
    async def hit(self, subject: str, *, limit: int, window_seconds: int, now_s: int) -> int | None:
        """Count one call of `subject`. None while at most `limit` calls fell in the current
        window; otherwise the seconds until the next window (Retry-After)."""
        ...

    async def close(self) -> None: ...


def window_of(now_s: int, window_seconds: int) -> tuple[int, int]:
    """(window number, seconds until it ends)."""
    number = now_s // window_seconds
    return number, (number + 1) * window_seconds - now_s
