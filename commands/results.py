"""What a command returns: the log position it wrote, or that it was a duplicate."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from domain.errors import ErrorKind, PryvError


@dataclass(frozen=True)
class CommandResult:
    aggregate_id: UUID
    position: int | None  # notification id of the last event written; None for a duplicate
    duplicate: bool = False


class NotFound(PryvError, LookupError):
    """The aggregate does not exist, or is not owned by the caller (we never say which)."""

    kind, code = ErrorKind.NOT_FOUND, "not_found"


class InvalidCommand(PryvError, ValueError):
    """Arguments the domain refuses (negative amount, missing reason, unknown env...)."""

    code = "invalid_params"


class ConcurrentUpdate(PryvError):
    """Concurrent writers kept winning the race for the same aggregate: nothing was written;
    the caller may retry (webhooks answer 503 so Stripe redelivers)."""

    kind, code = ErrorKind.UNAVAILABLE, "concurrent_update"
