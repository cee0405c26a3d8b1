"""Backend failures as Pryv errors: what a database, cache or bus raises when it is down.

The doors answer these as ServiceUnavailable (503, Retry-After: fail closed, never serve for
free) without knowing psycopg, redis, eventsourcing or NATS themselves.
"""

from __future__ import annotations

from domain.errors import ServiceUnavailable


def backend_failures() -> tuple[type[Exception], ...]:
    """Exceptions that mean a backing service cannot be reached (imported on first use: the
    embedded default never loads psycopg or redis)."""
    import psycopg
    import redis.exceptions
    from eventsourcing.persistence import InterfaceError, OperationalError

    return (
        psycopg.OperationalError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        OperationalError,
        InterfaceError,
        ConnectionError,
    )


def as_unavailable(exc: BaseException) -> ServiceUnavailable:
    """The Pryv error a backend failure is reported as; the backend's message stays in logs."""
    translated = ServiceUnavailable()
    translated.__cause__ = exc
    return translated
