"""CORS for the public API (`/v1/*`): browser apps call Pryv directly from the origins the
operator lists in PRYV_CORS_ORIGINS (default none: no CORS headers, browsers refuse).

Starlette's CORSMiddleware does the protocol (preflight, `Vary: Origin`, exposed headers); this
only confines it to `/v1/`: the wallet-signed management API and the dashboard stay same-origin.
Credentials are never allowed — a bearer key travels in `Authorization`, not in cookies.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

PUBLIC_PREFIX = "/v1/"
# What a browser client may read of an answer besides the CORS-safelisted headers.
EXPOSED = [
    "X-Request-Id",
    "Retry-After",
    *(
        f"X-RateLimit-{what}-{name}"
        for what in ("Limit", "Remaining", "Reset")
        for name in ("Requests", "Tokens")
    ),
    "X-Pryv-Privacy-Mode",
    "X-Pryv-PII-Redacted",
]


class PublicApiCors:
    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self._app = app
        self._cors = (
            CORSMiddleware(
                app,
                allow_origins=list(origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["*"],  # OpenAI's SDKs send their own x-stainless-* headers
                expose_headers=EXPOSED,
                allow_credentials=False,
                max_age=600,
            )
            if origins
            else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        public = scope["type"] == "http" and str(scope.get("path", "")).startswith(PUBLIC_PREFIX)
        if self._cors is not None and public:
            await self._cors(scope, receive, send)
            return
        await self._app(scope, receive, send)
