"""What a command returns: the log position it wrote, or that it was a duplicate."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class CommandResult:
    aggregate_id: UUID
    position: int | None  # notification id of the last event written; None for a duplicate
    duplicate: bool = False


class NotFound(LookupError):
    """The aggregate does not exist, or is not owned by the caller (we never say which)."""


class InvalidCommand(ValueError):
    """Arguments the domain refuses (negative amount, missing reason, unknown env...)."""


class ConcurrentUpdate(RuntimeError):
    """Concurrent writers kept winning the race for the same aggregate: nothing was written;
    the caller may retry (webhooks answer 503 so Stripe redelivers)."""
