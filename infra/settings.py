"""All configuration, in one place: the `PRYV_*` environment, typed and checked once.

`EnvironmentSettings` (pydantic-settings) declares every variable with its type and bounds;
`read_environment()` reads and checks them all, and a bad value is a ConfigurationError that
names each offending variable (never echoing a secret). `Settings` is what the rest of the
code receives: a frozen value in internal units (seconds, micro-USD, bytes), built from the
environment by `Settings.from_env()` or directly in tests, where it reads nothing. An empty
environment is the embedded default.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.api_keys import DEFAULT_RPM, DEFAULT_TPM
from domain.money import MICROS_PER_USD, usd_to_micros
from domain.tempo import DEFAULT_CHAIN_ID

PATH_USD = "0x20c0000000000000000000000000000000000000"  # Tempo's pathUSD (TIP-20)
MEMORY_ESCROW = "0x000000000000000000000000000000000e5c20e5"  # the in-memory chain's escrow
_ADDRESS = r"^0x[0-9a-fA-F]{40}$"

EMBEDDED_WELCOME_CREDIT_USD = Decimal("5")  # the embedded default's first-call test credit

# Fields whose values are secrets: never shown in an error message or a repr.
SECRET_FIELDS = frozenset(
    {
        "key_pepper",
        "admin_token",
        "stripe_secret_key",
        "stripe_webhook_secret",
        "sealer_key",
        "mpp_payee_key",
        "operator_key",
    }
)


class ConfigurationError(ValueError):
    """One or more PRYV_* variables have values Pryv cannot use; each is named."""


class StoreMissing(ConfigurationError):
    """An operator command found no embedded store where it looked (it never creates one)."""


def default_data_dir() -> Path:
    """PRYV_DATA_DIR, else the per-user data directory (platformdirs: ~/.local/share/pryv
    on Linux): never the current folder, so a command run elsewhere finds the same store."""
    return Path(platformdirs.user_data_dir("pryv", appauthor=False))


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None  # postgresql://… ; None = SQLite in data_dir
    database_schema: str | None = None  # PostgreSQL schema (isolates test runs)
    database_pool_size: int = 2  # event-store connections kept open per process
    persistence_module: str | None = None  # eventsourcing's own PERSISTENCE_MODULE wins
    redis_url: str | None = None  # None = in-memory read models
    redis_prefix: str = "pryv"
    nats_url: str | None = None  # None = in-process bus
    nats_stream: str = "PRYV_EVENTS"
    key_pepper: bytes = field(default=b"", repr=False)
    admin_token: str | None = field(default=None, repr=False)
    revocation_wait_seconds: float = 5.0
    relay_page_size: int = 500
    models_file: Path | None = None  # None = the packaged catalog (infra/models.toml)
    default_rpm: int = DEFAULT_RPM  # limits for keys created without their own
    default_tpm: int = DEFAULT_TPM
    public_url: str = "http://127.0.0.1:8000"  # where Stripe sends buyers back to
    dashboard_url: str | None = None  # "back" links on the success/cancel pages
    mcp_public_url: str | None = None  # the MCP server's own origin; None: public_url's
    stripe_secret_key: str | None = field(default=None, repr=False)  # None: checkout is 503
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    stripe_api_base: str | None = None  # tests point the real SDK at a local fake
    stripe_network_id: str | None = None  # Business Network profile: MPP's stripe charges
    checkout_min_usd_micros: int = 5 * MICROS_PER_USD
    checkout_max_usd_micros: int = 10_000 * MICROS_PER_USD
    credit_packs_file: Path | None = None  # None = infra/credit_packs.toml
    hold_ttl_seconds: int = 900  # a hold not settled by then is swept (the process died)
    ready_max_lag: int = 1000  # /readyz fails when a projection is further behind the log
    log_format: Literal["json", "text"] = "json"
    sealer_key: str | None = field(default=None, repr=False)  # else <data_dir>/sealer_key
    sealer_address: str | None = None  # the trusted sealer address(es), oldest first
    welcome_credit_micros: int = 0  # test credit a new wallet's first key comes with
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call /v1/* ("*": any)
    management_calls_per_minute: int = 120  # per wallet, across instances (429 beyond)
    # Addresses a low-balance webhook may reach although they are private (tests, a local
    # receiver); every other private, loopback or link-local address is refused.
    alert_webhook_allow_addresses: tuple[str, ...] = ()
    alert_check_seconds: float = 5.0  # how often balances are compared with alert thresholds
    access_log_sample: float = 1.0  # share of successful requests in the access log
    operator_key: str | None = field(default=None, repr=False)  # signs operator actions
    operator_address: str | None = None  # the trusted operator address(es)
    tempo_rpc_url: str | None = None  # a Tempo node for MPP; None = the in-memory chain
    tempo_chain_id: int = DEFAULT_CHAIN_ID
    mpp_currency: str = PATH_USD  # the TIP-20 token MPP is paid in (6 decimals = micro-USD)
    mpp_escrow: str = MEMORY_ESCROW  # the stream-channel escrow contract
    mpp_payee_key: str | None = field(default=None, repr=False)  # None: derived from the pepper
    mpp_env: Literal["test", "live"] | None = None  # None: test on the in-memory chain, else live
    mpp_realm: str | None = None  # None: public_url's host

    @property
    def mpp_credit_env(self) -> str:
        """What MPP money buys: test credit on a test chain. The in-memory chain (it has a
        faucet) is always one; a node's chain is live unless PRYV_MPP_ENV says test."""
        if not self.tempo_rpc_url:
            return "test"
        return self.mpp_env or "live"

    @property
    def embedded(self) -> bool:
        return self.database_url is None and self.redis_url is None and self.nats_url is None

    @classmethod
    def from_env(cls, *, create: bool = True) -> Settings:
        """The process's settings; embedded mode creates its data dir and key pepper on first
        start (`pryv serve`). With `create=False` (operator commands) an embedded store that
        does not exist yet is StoreMissing instead of a new, empty one."""
        return read_environment().to_settings(create_pepper=create, require_store=not create)


class EnvironmentSettings(BaseSettings):
    """Every PRYV_* variable, as written in the environment (names and units of the docs)."""

    model_config = SettingsConfigDict(
        env_prefix="PRYV_", env_ignore_empty=True, extra="ignore", frozen=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    database_schema: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    database_pool_size: int = Field(default=2, ge=1, le=100)
    persistence_module: str | None = Field(
        default=None, validation_alias=AliasChoices("PERSISTENCE_MODULE")
    )
    redis_url: str | None = None
    redis_prefix: str = Field(default="pryv", min_length=1, max_length=64)
    nats_url: str | None = None
    nats_stream: str = Field(default="PRYV_EVENTS", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    key_pepper: str | None = Field(default=None, repr=False)  # hex
    admin_token: str | None = Field(default=None, repr=False)
    revocation_wait_ms: int = Field(default=5000, ge=0, le=600_000)
    relay_page_size: int = Field(default=500, ge=1, le=100_000)
    models_file: Path | None = None
    default_rpm: int = Field(default=DEFAULT_RPM, ge=1)
    default_tpm: int = Field(default=DEFAULT_TPM, ge=1)
    public_url: str = "http://127.0.0.1:8000"
    dashboard_url: str | None = None
    mcp_public_url: str | None = None
    stripe_secret_key: str | None = Field(default=None, repr=False)
    stripe_webhook_secret: str | None = Field(default=None, repr=False)
    stripe_api_base: str | None = None
    stripe_network_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{1,255}$")
    checkout_min_usd: int = Field(default=5, ge=1)
    checkout_max_usd: int = Field(default=10_000, ge=1)
    credit_packs_file: Path | None = None
    hold_ttl_seconds: int = Field(default=900, ge=1)
    ready_max_lag: int = Field(default=1000, ge=0)
    log_format: Literal["json", "text"] = "json"
    sealer_key: str | None = Field(default=None, repr=False)
    sealer_address: str | None = None
    operator_key: str | None = Field(default=None, repr=False, pattern=r"^(0x)?[0-9a-fA-F]{64}$")
    operator_address: str | None = None
    # Test credit granted once to each new wallet with its first key. Unset: $5 on the
    # embedded default (a first call needs no operator), none on shared databases.
    cors_origins: str | None = None  # comma-separated origins (https://app.example), or *
    management_calls_per_minute: int = Field(default=120, ge=1, le=100_000)
    alert_webhook_allow_addresses: str | None = None  # comma-separated IP addresses
    alert_check_seconds: float = Field(default=5.0, gt=0, le=3600)
    access_log_sample: float = Field(default=1.0, ge=0, le=1)
    welcome_credit_usd: Decimal | None = Field(default=None, ge=0, le=1000, decimal_places=6)
    pii_ner_model: str | None = None  # an installed spaCy package; "none" disables NER
    pii_threads: int | None = Field(default=None, ge=1, le=256)
    tempo_rpc_url: str | None = None
    tempo_chain_id: int = Field(default=DEFAULT_CHAIN_ID, ge=1)
    mpp_currency: str = Field(default=PATH_USD, pattern=_ADDRESS)
    mpp_escrow: str | None = Field(default=None, pattern=_ADDRESS)
    mpp_payee_key: str | None = Field(default=None, repr=False, pattern=r"^(0x)?[0-9a-fA-F]{64}$")
    mpp_env: Literal["test", "live"] | None = None
    mpp_realm: str | None = Field(default=None, pattern=r"^[\x21-\x7e]{1,253}$")

    @field_validator("key_pepper")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                bytes.fromhex(value)
            except ValueError:
                raise ValueError("must be hex") from None
        return value

    @field_validator("public_url", "dashboard_url", "mcp_public_url", "tempo_rpc_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/") if value else value

    def to_settings(self, *, create_pepper: bool = False, require_store: bool = False) -> Settings:
        """In internal units; without PRYV_KEY_PEPPER, the data dir's pepper (created here
        when `create_pepper`, else empty). `require_store`: an embedded store must exist."""
        if require_store and not self.database_url:
            if not (self.data_dir / "events.sqlite").exists():
                raise StoreMissing(
                    f"no Pryv store in {self.data_dir} (run `pryv serve` there first, or set "
                    "PRYV_DATA_DIR to the store's folder)"
                )
            create_pepper = True  # the store exists: its pepper is read, never made anew
        if self.key_pepper:
            pepper = bytes.fromhex(self.key_pepper)
        elif create_pepper:
            pepper = load_or_create_pepper(self.data_dir)
        else:
            pepper = b""
        if self.mpp_env == "live" and not self.tempo_rpc_url:
            raise ConfigurationError(
                "PRYV_MPP_ENV=live needs PRYV_TEMPO_RPC_URL (the in-memory chain has test money)"
            )
        if self.tempo_rpc_url and not self.mpp_escrow:
            raise ConfigurationError(
                "PRYV_TEMPO_RPC_URL needs PRYV_MPP_ESCROW (the channel escrow)"
            )
        welcome = self.welcome_credit_usd
        if welcome is None:
            welcome = Decimal(0) if self.database_url else EMBEDDED_WELCOME_CREDIT_USD
        if welcome and self.database_url and not self.operator_key:
            raise ConfigurationError(
                "PRYV_WELCOME_CREDIT_USD on a shared database needs PRYV_OPERATOR_KEY (the "
                "welcome grant is an operator action, signed like any other)"
            )
        if self.checkout_min_usd > self.checkout_max_usd:
            raise ConfigurationError("PRYV_CHECKOUT_MIN_USD must not exceed PRYV_CHECKOUT_MAX_USD")
        return Settings(
            data_dir=self.data_dir,
            database_url=self.database_url,
            database_schema=self.database_schema,
            database_pool_size=self.database_pool_size,
            persistence_module=self.persistence_module,
            redis_url=self.redis_url,
            redis_prefix=self.redis_prefix,
            nats_url=self.nats_url,
            nats_stream=self.nats_stream,
            key_pepper=pepper,
            admin_token=self.admin_token,
            revocation_wait_seconds=self.revocation_wait_ms / 1000,
            relay_page_size=self.relay_page_size,
            models_file=self.models_file,
            default_rpm=self.default_rpm,
            default_tpm=self.default_tpm,
            public_url=self.public_url,
            dashboard_url=self.dashboard_url,
            mcp_public_url=self.mcp_public_url,
            stripe_secret_key=self.stripe_secret_key,
            stripe_webhook_secret=self.stripe_webhook_secret,
            stripe_api_base=self.stripe_api_base,
            stripe_network_id=self.stripe_network_id,
            checkout_min_usd_micros=self.checkout_min_usd * MICROS_PER_USD,
            checkout_max_usd_micros=self.checkout_max_usd * MICROS_PER_USD,
            credit_packs_file=self.credit_packs_file,
            hold_ttl_seconds=self.hold_ttl_seconds,
            ready_max_lag=self.ready_max_lag,
            log_format=self.log_format,
            sealer_key=self.sealer_key,
            sealer_address=self.sealer_address,
            operator_key=self.operator_key,
            operator_address=self.operator_address,
            welcome_credit_micros=usd_to_micros(str(welcome)),
            cors_origins=parse_origins(self.cors_origins),
            management_calls_per_minute=self.management_calls_per_minute,
            alert_webhook_allow_addresses=parse_addresses(self.alert_webhook_allow_addresses),
            alert_check_seconds=self.alert_check_seconds,
            access_log_sample=self.access_log_sample,
            tempo_rpc_url=self.tempo_rpc_url,
            tempo_chain_id=self.tempo_chain_id,
            mpp_currency=self.mpp_currency.lower(),
            mpp_escrow=(self.mpp_escrow or MEMORY_ESCROW).lower(),
            mpp_payee_key=self.mpp_payee_key,
            mpp_env=self.mpp_env,
            mpp_realm=self.mpp_realm,
        )


def parse_addresses(text: str | None) -> tuple[str, ...]:
    """`127.0.0.1, ::1` -> IP addresses (PRYV_ALERT_WEBHOOK_ALLOW_ADDRESSES)."""
    addresses = tuple(part.strip() for part in (text or "").split(",") if part.strip())
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigurationError(
                f"PRYV_ALERT_WEBHOOK_ALLOW_ADDRESSES: {address!r} is not an IP address"
            ) from None
    return addresses


def parse_origins(text: str | None) -> tuple[str, ...]:
    """`https://a.example, http://localhost:3000` -> origins; `*` alone allows any."""
    origins = tuple(part.strip().rstrip("/") for part in (text or "").split(",") if part.strip())
    for origin in origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/\s]+", origin):
            raise ConfigurationError(
                f"PRYV_CORS_ORIGINS: {origin!r} is not an origin (scheme://host[:port])"
            )
    return origins


def _variable(name: str) -> str:
    return "PERSISTENCE_MODULE" if name == "persistence_module" else f"PRYV_{name.upper()}"


def read_environment() -> EnvironmentSettings:
    """The environment, checked; no side effects (nothing is created on disk)."""
    try:
        return EnvironmentSettings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            shown = "" if name in SECRET_FIELDS else f" (got {error.get('input')!r})"
            problems.append(f"{_variable(name)}: {error['msg']}{shown}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None


def environment_secret(name: str) -> str | None:
    """A secret the model catalog names by variable (an upstream's API key): read here, with
    the rest of the configuration, and only when asked for."""
    return os.environ.get(name) or None


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


# prometheus_client's own variable (not a PRYV_ setting): set for `serve --processes N` so the
# worker processes it spawns share their metric samples (infra/metrics.py).
PROMETHEUS_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_metrics_dir() -> str | None:
    return os.environ.get(PROMETHEUS_MULTIPROC_ENV) or None


def share_multiprocess_metrics_dir(path: str) -> None:
    """Name the sample directory for this process and the processes it starts."""
    os.environ[PROMETHEUS_MULTIPROC_ENV] = path
