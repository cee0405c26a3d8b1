"""Composition root, above commands/ and infra/: what a process needs, from Settings.

Embedded default (no env vars): SQLite + in-process bus + in-memory read models.
Production: PRYV_DATABASE_URL (PostgreSQL), PRYV_NATS_URL (JetStream), PRYV_REDIS_URL (Redis).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg
from psycopg import sql

from commands.admission import AdmissionGate
from commands.application import PryvApplication
from commands.call_limits import CallLimiter
from commands.chain import Chain
from commands.group_commit import GroupCommitWriter
from commands.metering import Meter, MeteringLimits
from domain.catalog import Catalog
from domain.credit_packs import CreditPack
from domain.tempo import TempoTerms
from infra.admission_memory import MemoryAdmission
from infra.bus import EventBus
from infra.bus_memory import MemoryBus
from infra.call_limits_memory import MemoryCallLimiter
from infra.catalog_files import load_catalog, load_credit_packs
from infra.dashboard_sessions import MemorySessionStore, RedisSessionStore, SessionStore
from infra.ethereum import Account
from infra.event_store import event_store_env
from infra.nonces import NonceStore, PostgresNonceStore, SqliteNonceStore
from infra.postgres_ddl import ddl_lock
from infra.read_store_memory import MemoryReadStore
from infra.settings import Settings
from infra.stripe_billing import StripeBilling
from infra.upstreams import UpstreamRouter
from projections.store import ReadStore


@dataclass
class Platform:
    settings: Settings
    app: PryvApplication
    bus: EventBus
    read_store: ReadStore
    nonces: NonceStore
    catalog: Catalog
    upstreams: UpstreamRouter
    writer: GroupCommitWriter
    meter: Meter
    billing: StripeBilling
    credit_packs: tuple[CreditPack, ...]
    chain: Chain
    tempo: TempoTerms
    payee_key: str = field(repr=False, default="")  # signs the escrow closes MPP sessions end with
    call_limits: CallLimiter = field(default_factory=MemoryCallLimiter)  # management calls

    async def close(self) -> None:
        await self.meter.drain()
        await self.chain.close()
        await self.writer.close()
        await self.upstreams.close()
        await self.nonces.close()
        await self.call_limits.close()
        await self.read_store.close()
        await self.bus.close()
        self.app.close()


def ensure_schema(url: str, schema: str) -> None:
    """eventsourcing creates tables, not schemas."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def open_application(settings: Settings) -> PryvApplication:
    if not settings.database_url:
        return PryvApplication(event_store_env(settings))
    with ddl_lock(settings.database_url):  # eventsourcing creates its tables in __init__
        if settings.database_schema:
            ensure_schema(settings.database_url, settings.database_schema)
        return PryvApplication(event_store_env(settings))


async def open_platform(settings: Settings) -> Platform:
    app = open_application(settings)
    bus: EventBus
    read_store: ReadStore
    nonces: NonceStore
    if settings.nats_url:
        from infra.bus_nats import NatsBus

        bus = await NatsBus.connect(settings.nats_url, settings.nats_stream)
    else:
        bus = MemoryBus()
    gate: AdmissionGate
    if settings.redis_url:
        from infra.admission_redis import RedisAdmission
        from infra.call_limits_redis import RedisCallLimiter
        from infra.read_store_redis import RedisReadStore

        redis_store = RedisReadStore.from_url(settings.redis_url, settings.redis_prefix)
        read_store, gate = redis_store, RedisAdmission(redis_store)
        call_limits: CallLimiter = RedisCallLimiter(redis_store.client, redis_store.prefix)
    else:
        memory_store = MemoryReadStore()
        read_store, gate = memory_store, MemoryAdmission(memory_store)
        call_limits = MemoryCallLimiter()
    if settings.database_url:
        nonces = await PostgresNonceStore.open(settings.database_url, settings.database_schema)
    else:
        nonces = SqliteNonceStore(settings.data_dir / "nonces.sqlite")
    catalog = load_catalog(settings.models_file)
    writer = GroupCommitWriter(app)
    meter = Meter(
        app,
        writer,
        gate,
        MeteringLimits(
            default_rpm=settings.default_rpm,
            default_tpm=settings.default_tpm,
            hold_ttl=timedelta(seconds=settings.hold_ttl_seconds),
        ),
    )
    billing = StripeBilling(
        settings.stripe_secret_key, settings.stripe_webhook_secret, settings.stripe_api_base
    )
    chain = open_chain(settings)
    payee_key = mpp_payee_key(settings)
    tempo = TempoTerms(
        chain_id=settings.tempo_chain_id,
        currency=settings.mpp_currency,
        recipient=Account.from_key(payee_key).address.lower(),
        escrow=settings.mpp_escrow,
        env=settings.mpp_credit_env,
    )
    return Platform(
        settings,
        app,
        bus,
        read_store,
        nonces,
        catalog,
        UpstreamRouter(catalog),
        writer,
        meter,
        billing,
        load_credit_packs(settings.credit_packs_file),
        chain,
        tempo,
        payee_key,
        call_limits,
    )


def open_chain(settings: Settings) -> Chain:
    """The Tempo node at PRYV_TEMPO_RPC_URL, else a chain in memory (test money)."""
    if settings.tempo_rpc_url:
        from infra.chain_jsonrpc import JsonRpcChain

        return JsonRpcChain(settings.tempo_rpc_url, chain_id=settings.tempo_chain_id)
    from infra.chain_memory import InMemoryChain

    return InMemoryChain(
        chain_id=settings.tempo_chain_id,
        tokens=(settings.mpp_currency,),
        escrow=settings.mpp_escrow,
    )


def mpp_payee_key(settings: Settings) -> str:
    """The wallet MPP is paid to: PRYV_MPP_PAYEE_KEY, else one derived from the key pepper
    (stable for the deployment, never stored apart from it)."""
    if settings.mpp_payee_key:
        return "0x" + settings.mpp_payee_key.removeprefix("0x").lower()
    return "0x" + hashlib.sha256(settings.key_pepper + b"pryv:mpp-payee").hexdigest()


def open_session_store(platform: Platform) -> SessionStore:
    """Dashboard sessions beside the read models: in Redis (shared by every dashboard process,
    kept across restarts) when there is one, else in memory."""
    from infra.read_store_redis import RedisReadStore

    store = platform.read_store
    if isinstance(store, RedisReadStore):
        return RedisSessionStore(store.client, store.prefix)
    return MemorySessionStore()
