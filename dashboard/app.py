"""The dashboard app: a FastAPI app on its own host/port, sharing the API process's Platform.

    GET /              the single-page app (plain HTML/CSS/ES modules from dashboard/static)
    GET /healthz       liveness
    GET /checkout/return   Stripe's way back, on to the Credits page
    /auth/*            Sign-In with Ethereum, session cookie        (dashboard.auth)
    GET /app/api/*     reads for the signed-in wallet               (dashboard.reads)
    POST|PUT|DELETE /app/api/*   signed actions, forwarded to the API in-process (dashboard.actions)
    GET /app/api/{config,docs,privacy-options,models,credit-packs}   public information

Nothing is loaded from another origin; a strict Content-Security-Policy says so.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.body_limits import BodyLimitMiddleware
from api.errors import install_error_handlers
from bootstrap.platform import Platform, open_session_store
from dashboard import actions, auth, reads
from dashboard.context import DashboardConfig, DashboardContext, context
from dashboard.docs_catalog import docs_document, privacy_options
from gateway.sign_in import LoginNonces, nonce_secret

CHECKOUT_SESSION = re.compile(r"cs_[A-Za-z0-9_]{1,250}")
STATIC = Path(__file__).with_name("static")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), clipboard-write=(self)",
}


def create_dashboard(
    platform: Platform,
    *,
    api_base_url: str,
    public_url: str | None = None,
    api_app: FastAPI | None = None,
    secure_cookies: bool | None = None,
) -> FastAPI:
    """The dashboard over `platform`.

    `api_base_url`: where users' API clients reach the public API (docs, return pages).
    `public_url`: this dashboard's own origin (default: PRYV_DASHBOARD_URL); sign-in messages
    must name its host. Without one, sign-in is accepted only on loopback addresses.
    `api_app`: the public API app to forward signed actions to (default: a new one over
    `platform`); `pryv serve` passes the one it serves.
    """
    if api_app is None:
        from api.app import create_app

        api_app = create_app(platform)
    config = DashboardConfig(
        api_base_url=api_base_url.rstrip("/"),
        public_url=(public_url or platform.settings.dashboard_url or "").rstrip("/") or None,
        secure_cookies=secure_cookies,
    )
    app = FastAPI(
        title="Pryv dashboard",
        version="1.0.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.dashboard = DashboardContext(
        platform=platform,
        api_app=api_app,
        config=config,
        sessions=open_session_store(platform),
        nonces=LoginNonces(nonce_secret(platform.settings.key_pepper)),
    )
    install_error_handlers(app)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path.startswith(("/auth/", "/app/api/")):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/checkout/return", include_in_schema=False)
    async def checkout_return(status: str = "", session_id: str = "") -> RedirectResponse:
        """Stripe's success and cancel URLs land here (a plain path: Stripe fills the session
        id into the query) and are sent on to the Credits page, which shows the payment."""
        state = "success" if status == "success" else "cancel"
        target = f"/#/credits?checkout={state}"
        if CHECKOUT_SESSION.fullmatch(session_id):
            target += f"&session={session_id}"
        return RedirectResponse(target, status_code=303)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/app/api/config")
    async def app_config(request: Request) -> dict[str, Any]:
        cfg = context(request).config
        return {"apiBaseUrl": cfg.api_base_url}

    @app.get("/app/api/docs")
    async def docs(request: Request) -> dict[str, Any]:
        ctx = context(request)
        models = [m.id for m in ctx.platform.catalog.models]
        return docs_document(ctx.api_app, ctx.config.api_base_url, models)

    @app.get("/app/api/privacy-options")
    async def privacy() -> dict[str, Any]:
        return privacy_options()

    app.include_router(auth.router)
    app.include_router(auth.mutating)
    app.include_router(reads.router)
    app.include_router(actions.router)
    app.include_router(actions.public)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimitMiddleware)  # outermost: before the security-headers middleware
    return app
