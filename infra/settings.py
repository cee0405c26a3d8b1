"""Process settings from environment variables. Empty environment = the embedded default."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(".pryv")
    database_url: str | None = None  # postgresql://… ; None = SQLite in data_dir
    database_schema: str | None = None  # PostgreSQL schema (isolates test runs)
    database_pool_size: int = 2  # event-store connections kept open per process
    redis_url: str | None = None  # None = in-memory read models
    redis_prefix: str = "pryv"
    nats_url: str | None = None  # None = in-process bus
    nats_stream: str = "PRYV_EVENTS"
    key_pepper: bytes = b""
    admin_token: str | None = None
    revocation_wait_seconds: float = 5.0
    relay_page_size: int = 500
    models_file: Path | None = None  # None = the packaged catalog (infra/models.toml)
    default_rpm: int = 600  # limits for keys created without their own
    default_tpm: int = 2_000_000
    public_url: str = "http://127.0.0.1:8000"  # where Stripe sends buyers back to
    dashboard_url: str | None = None  # "back" links on the success/cancel pages
    stripe_secret_key: str | None = None  # None: checkout answers 503 billing_not_configured
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None  # tests point the real SDK at a local fake
    checkout_min_usd_micros: int = 5_000_000
    checkout_max_usd_micros: int = 10_000_000_000
    credit_packs_file: Path | None = None  # None = infra/credit_packs.toml
    hold_ttl_seconds: int = 900  # a hold not settled by then is swept (the process died)
    ready_max_lag: int = 1000  # /readyz fails when a projection is further behind the log

    @property
    def embedded(self) -> bool:
        return self.database_url is None and self.redis_url is None and self.nats_url is None

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("PRYV_DATA_DIR", ".pryv"))
        pepper_hex = os.environ.get("PRYV_KEY_PEPPER")
        pepper = bytes.fromhex(pepper_hex) if pepper_hex else load_or_create_pepper(data_dir)
        return cls(
            data_dir=data_dir,
            database_url=os.environ.get("PRYV_DATABASE_URL") or None,
            database_schema=os.environ.get("PRYV_DATABASE_SCHEMA") or None,
            database_pool_size=_env_int("PRYV_DATABASE_POOL_SIZE", 2),
            redis_url=os.environ.get("PRYV_REDIS_URL") or None,
            redis_prefix=os.environ.get("PRYV_REDIS_PREFIX", "pryv"),
            nats_url=os.environ.get("PRYV_NATS_URL") or None,
            nats_stream=os.environ.get("PRYV_NATS_STREAM", "PRYV_EVENTS"),
            key_pepper=pepper,
            admin_token=os.environ.get("PRYV_ADMIN_TOKEN") or None,
            revocation_wait_seconds=_env_int("PRYV_REVOCATION_WAIT_MS", 5000) / 1000,
            relay_page_size=_env_int("PRYV_RELAY_PAGE_SIZE", 500),
            models_file=Path(os.environ["PRYV_MODELS_FILE"])
            if os.environ.get("PRYV_MODELS_FILE")
            else None,
            default_rpm=_env_int("PRYV_DEFAULT_RPM", 600),
            default_tpm=_env_int("PRYV_DEFAULT_TPM", 2_000_000),
            public_url=os.environ.get("PRYV_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            dashboard_url=os.environ.get("PRYV_DASHBOARD_URL") or None,
            stripe_secret_key=os.environ.get("PRYV_STRIPE_SECRET_KEY") or None,
            stripe_webhook_secret=os.environ.get("PRYV_STRIPE_WEBHOOK_SECRET") or None,
            stripe_api_base=os.environ.get("PRYV_STRIPE_API_BASE") or None,
            checkout_min_usd_micros=_env_int("PRYV_CHECKOUT_MIN_USD", 5) * 1_000_000,
            checkout_max_usd_micros=_env_int("PRYV_CHECKOUT_MAX_USD", 10_000) * 1_000_000,
            ready_max_lag=_env_int("PRYV_READY_MAX_LAG", 1000),
            hold_ttl_seconds=_env_int("PRYV_HOLD_TTL_SECONDS", 900),
            credit_packs_file=Path(os.environ["PRYV_CREDIT_PACKS_FILE"])
            if os.environ.get("PRYV_CREDIT_PACKS_FILE")
            else None,
        )


def load_or_create_pepper(data_dir: Path) -> bytes:
    """Embedded mode keeps its key pepper beside the SQLite file; production passes PRYV_KEY_PEPPER.

    Losing the pepper invalidates every key, so it is written once with owner-only permissions.
    """
    path = data_dir / "key_pepper"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    data_dir.mkdir(parents=True, exist_ok=True)
    pepper = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(pepper.hex())
    return pepper
