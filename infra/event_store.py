"""Event store configuration for eventsourcing: SQLite file by default, PostgreSQL when configured.

eventsourcing's own variables (PERSISTENCE_MODULE, POSTGRES_*, SQLITE_DBNAME) win when present;
otherwise PRYV_DATABASE_URL selects PostgreSQL and its absence selects SQLite under the data dir.
"""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from infra.settings import Settings


def event_store_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment for these settings."""
    if settings.persistence_module:  # eventsourcing reads its own variables
        return {}
    if settings.database_url:
        return postgres_env(
            settings.database_url, settings.database_schema, settings.database_pool_size
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(settings.data_dir / "events.sqlite"),
        "SQLITE_LOCK_TIMEOUT": "10",
        "CREATE_TABLE": "y",
    }


def postgres_env(url: str, schema: str | None = None, pool_size: int = 2) -> dict[str, str]:
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"PRYV_DATABASE_URL must be postgresql://…, got {parsed.scheme!r}")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parsed.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": parsed.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parsed.port or 5432),
        "POSTGRES_USER": unquote(parsed.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parsed.password or ""),
        "POSTGRES_CONNECT_TIMEOUT": "5",
        # eventsourcing opens the pool's connections eagerly, in every process (API, relay,
        # projector, sweeper): keep it small; the overflow serves bursts.
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size * 2),
        "POSTGRES_LOCK_TIMEOUT": "5",
        "CREATE_TABLE": "y",
    }
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    return env
