"""The FastAPI application: routers, error handlers, and the platform it serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from api import audit_feed, billing, gateway, management, mpp, observability, pii_preview
from api.body_limits import BodyLimitMiddleware
from api.cors import PublicApiCors
from api.errors import install_error_handlers
from api.openapi import install_openapi
from bootstrap.platform import Platform, open_platform
from gateway.authentication import KeyIdentityCache
from gateway.chat import ChatService
from gateway.mpp.service import MppService
from gateway.preview import PreviewService
from infra.log_format import configure_logging
from infra.metrics import multiprocess
from infra.settings import Settings, read_environment
from mcp_server import consent, metadata, revocation
from mcp_server.door import create_mcp_door
from privacy.account_defaults import AccountSettingsCache
from privacy.pipeline import PrivacyFilter
from projections.settings import read_settings
from workers.embedded import running_workers

log = logging.getLogger("pryv.api")


def create_app(
    platform: Platform | None = None,
    *,
    settings: Settings | None = None,
    workers: bool = False,
) -> FastAPI:
    """An app over `platform`, or over one opened from `settings` at startup (and closed after).

    With `workers`, the relay and projector run in this process (the embedded default), and the
    app starts serving only once the read models have caught up with the log.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            active = platform
            if active is None:
                active = await open_platform(settings or Settings.from_env())
                stack.push_async_callback(active.close)
            app.state.platform = active
            _attach_services(app, active)
            if platform is None:
                active.writer.batch_observers.append(app.state.metrics.batch_size.observe)
            if workers:  # every worker, the sealer too (`serve --workers` on any backend)
                await stack.enter_async_context(running_workers(active, catch_up=True, seal=True))
            await stack.enter_async_context(app.state.mcp.server.session_manager.run())
            # Load the PII engine (spaCy, ~2 s) now rather than in the first request.
            warm_up = asyncio.create_task(app.state.privacy.engine())
            stack.push_async_callback(_cancel, warm_up)
            if multiprocess():  # `--processes N`: this process's counts reach every scrape
                syncing = asyncio.create_task(_sync_metrics(app.state.metrics))
                stack.push_async_callback(_cancel, syncing)
            yield

    app = FastAPI(
        title="Pryv API",
        version="1.0.0",
        description="Private AI gateway: OpenAI-compatible /v1, wallet-signed /api/v1.",
        lifespan=lifespan,
    )
    if platform is not None:
        app.state.platform = platform
    app.state.key_cache = KeyIdentityCache()
    app.state.privacy = PrivacyFilter()
    app.state.metrics = metrics = observability.Metrics()
    metrics.watch_ner_batches(app.state.privacy.ner_batches)

    def shortfalls() -> tuple[int, int]:
        active: Platform | None = getattr(app.state, "platform", None)
        return (
            (0, 0) if active is None else (active.meter.shortfalls, active.meter.shortfall_micros)
        )

    metrics.watch_counters(
        shortfalls,
        ("pryv_settlement_shortfalls", "Settlements whose reported cost exceeded the hold"),
        ("pryv_settlement_shortfall_micros", "Reported cost beyond the hold, not charged (µUSD)"),
    )
    metrics.watch_counters(
        app.state.privacy.work_done,
        ("pryv_pii_texts", "Texts the PII engine analysed"),
        ("pryv_pii_images", "Images redacted (OCR and faces)"),
        ("pryv_pii_documents", "PDFs and web pages read for redaction"),
    )
    install_error_handlers(app)
    # The MCP door and CORS need only settings: reading them creates no data dir and no pepper.
    known = (
        platform.settings if platform is not None else settings or read_environment().to_settings()
    )
    app.state.mcp = mcp_door = create_mcp_door(known)
    # The chat route first: routes are matched in order, and it carries nearly all traffic.
    app.include_router(gateway.router)
    app.include_router(consent.router)
    app.include_router(metadata.router)
    app.include_router(revocation.router)
    app.include_router(pii_preview.router)
    app.include_router(management.router)
    app.include_router(billing.router)
    app.include_router(mpp.router)
    app.include_router(audit_feed.router)
    app.include_router(observability.router)
    # Outermost last: every request is logged and counted, then its body is bounded.
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(PublicApiCors, origins=known.cors_origins)  # preflights answered here
    app.add_middleware(
        observability.ObservabilityMiddleware,
        metrics=metrics,
        access_log_sample=known.access_log_sample,
    )
    install_openapi(app)
    # Last: the MCP transport at /mcp and the OAuth endpoints at the root (/authorize, /token,
    # /register, /revoke, /.well-known/…), below every route above.
    app.mount("/", mcp_door.asgi)
    if platform is not None:
        platform.writer.batch_observers.append(metrics.batch_size.observe)
        _attach_services(app, platform)
    return app


async def _sync_metrics(metrics: observability.Metrics, every: float = 5.0) -> None:
    while True:
        await asyncio.sleep(every)
        metrics.sync()


async def _cancel(task: asyncio.Task[object]) -> None:
    task.cancel()
    with contextlib.suppress(BaseException):
        await task


def _attach_services(app: FastAPI, platform: Platform) -> None:
    """The doors' shared services over `platform` (one privacy filter, one PII engine)."""

    async def read(account_id: str) -> dict[str, object]:
        return await read_settings(platform.read_store, account_id)

    app.state.account_settings = AccountSettingsCache(read)
    app.state.chat = ChatService(platform, app.state.privacy, app.state.account_settings)
    app.state.preview = PreviewService(platform, app.state.privacy)
    app.state.mcp.runtime.attach(platform, app.state.chat, app.state.preview)
    app.state.mpp = MppService(platform, app.state.chat, app.state.preview)
    app.state.metrics.watch_upstreams(lambda: platform.upstreams.stats)


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` worker processes: each opens its own platform from the
    environment (production backends; the relay and projector run as their own processes)."""
    settings = Settings.from_env()
    configure_logging(settings.log_format)  # a spawned worker starts unconfigured
    return create_app(settings=settings, workers=False)
