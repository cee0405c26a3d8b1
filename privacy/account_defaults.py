"""Account privacy defaults, cached briefly per process."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any


class AccountSettingsCache:
    """Account privacy defaults, re-read at most every `ttl` seconds per account (a settings
    change reaches every API process within that time)."""

    def __init__(self, read: Callable[[str], Awaitable[dict[str, Any]]], ttl: float = 5.0):
        self._read = read
        self._ttl = ttl
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    async def get(self, account_id: str) -> dict[str, Any]:
        now = time.monotonic()
        cached = self._entries.get(account_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        value = await self._read(account_id)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[account_id] = (now, value)
        return value
