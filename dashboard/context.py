"""What every dashboard route needs: the platform, the API app it forwards to, its config,
the session store and the sign-in nonces. One instance per dashboard app (`app.state.dashboard`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from fastapi import FastAPI, Request

from api.errors import ApiError
from bootstrap.platform import Platform
from domain.siwe import LoginPolicy
from gateway.sign_in import LoginNonces
from infra.dashboard_sessions import Session, SessionStore

COOKIE = "pryv_session"
SECURE_COOKIE = "__Host-pryv_session"  # the __Host- prefix: Secure, Path=/, no Domain
CSRF_HEADER = "x-pryv-dashboard"


@dataclass(frozen=True)
class DashboardConfig:
    api_base_url: str  # where API clients (and the docs' examples) reach the public API
    public_url: str | None = None  # this dashboard's own origin, e.g. https://platform.pryv.ai
    secure_cookies: bool | None = None  # None: Secure when the request came over https

    @property
    def domain(self) -> str | None:
        return urlsplit(self.public_url).netloc if self.public_url else None


@dataclass
class DashboardContext:
    platform: Platform
    api_app: FastAPI
    config: DashboardConfig
    sessions: SessionStore
    nonces: LoginNonces


def context(request: Request) -> DashboardContext:
    ctx: DashboardContext = request.app.state.dashboard
    return ctx


def now() -> datetime:
    return datetime.now(UTC)


def _is_loopback(host: str) -> bool:
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def login_policy(request: Request) -> LoginPolicy:
    """The domain sign-in messages must name. With a configured public URL, that URL's host;
    otherwise (local use) the Host the browser used, and only if it is a loopback address —
    a Host header is the caller's to choose, so it is trusted only where phishing cannot reach.
    """
    ctx = context(request)
    if ctx.config.domain:
        return LoginPolicy(domain=ctx.config.domain)
    host = request.headers.get("host", "")
    if not _is_loopback(urlsplit(f"//{host}").hostname or ""):
        raise ApiError(
            403,
            "DOMAIN_MISMATCH",
            "this dashboard has no public URL configured (PRYV_DASHBOARD_URL); "
            "sign-in works only on a loopback address until it has one",
        )
    return LoginPolicy(domain=host)


def cookie_secure(request: Request) -> bool:
    """Secure cookies when asked, when the configured public URL is https (a TLS-terminating
    proxy may speak plain http to us), or when this request came over https."""
    config = context(request).config
    if config.secure_cookies is not None:
        return config.secure_cookies
    if config.public_url:
        return config.public_url.startswith("https://")
    return request.url.scheme == "https"


def session_token(request: Request) -> str | None:
    return request.cookies.get(SECURE_COOKIE) or request.cookies.get(COOKIE)


async def current_session(request: Request) -> Session:
    """The signed-in wallet's session, or 401 `not_signed_in`."""
    session = await context(request).sessions.get(session_token(request), now())
    if session is None:
        raise ApiError(401, "not_signed_in", "sign in with your wallet first")
    return session


def csrf_guard(request: Request) -> None:
    """State-changing requests must carry X-Pryv-Dashboard: 1 (a custom header: a cross-site
    form cannot send it, and a cross-site fetch would need a CORS preflight we never grant) and,
    when the browser says where they come from, come from this very origin."""
    if request.headers.get(CSRF_HEADER) != "1":
        raise ApiError(403, "csrf_failed", "missing the X-Pryv-Dashboard: 1 header")
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise ApiError(403, "csrf_failed", f"cross-site request refused ({site})")
    origin = request.headers.get("origin")
    expected = context(request).config.domain or request.headers.get("host")
    if origin is not None and urlsplit(origin).netloc != expected:
        raise ApiError(403, "csrf_failed", "request from another origin refused")
