"""One base for every error Pryv reports to a caller, whichever door it came through.

A `PryvError` says what went wrong in terms a client can act on: a stable `code`, a `kind`
(the class of failure: each door maps it to its own status — HTTP 4xx/5xx, an MCP tool error,
a CLI exit code), the offending `param`, and `metadata` (rate-limit figures, Retry-After) the
HTTP door sends as headers. Adapters translate backend exceptions into these; nothing above
them needs to know psycopg, redis or NATS.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ErrorKind(StrEnum):
    INVALID_REQUEST = "invalid_request"
    AUTHENTICATION = "authentication"
    PAYMENT_REQUIRED = "payment_required"
    PERMISSION = "permission"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA = "unsupported_media"
    RATE_LIMITED = "rate_limited"
    UPSTREAM = "upstream"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class PryvError(Exception):
    """An error with a stable code, for the caller. Subclasses set `kind` and `code`
    defaults; an instance may override both."""

    kind: ErrorKind = ErrorKind.INVALID_REQUEST
    code: str = "invalid_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        kind: ErrorKind | None = None,
        param: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if kind is not None:
            self.kind = kind
        self.param = param
        self.metadata: dict[str, str] = dict(metadata or {})


class ServiceUnavailable(PryvError):
    """A backing service (database, cache, bus) cannot be reached: fail closed, retry later."""

    kind, code = ErrorKind.UNAVAILABLE, "service_unavailable"

    def __init__(self, message: str = "a backing service is unavailable; retry") -> None:
        super().__init__(message, metadata={"Retry-After": "1"})
