"""CORS on the public API only, from the origins PRYV_CORS_ORIGINS lists (default: none)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx

from api.app import create_app
from bootstrap.platform import open_platform
from infra.settings import Settings, parse_origins

ALLOWED = "https://app.example"


async def client_for(tmp_path: Path, origins: str | None) -> tuple[httpx.AsyncClient, object]:
    settings = dataclasses.replace(
        Settings(data_dir=tmp_path / "pryv", key_pepper=b"p"), cors_origins=parse_origins(origins)
    )
    platform = await open_platform(settings)
    transport = httpx.ASGITransport(app=create_app(platform))
    return httpx.AsyncClient(transport=transport, base_url="http://pryv.test"), platform


async def test_listed_origins_may_call_v1_from_a_browser(tmp_path: Path) -> None:
    client, platform = await client_for(tmp_path, f"{ALLOWED}, http://localhost:3000")
    try:
        preflight = await client.options(
            "/v1/chat/completions",
            headers={
                "Origin": ALLOWED,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type, x-stainless-os",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ALLOWED
        allowed_headers = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed_headers and "x-stainless-os" in allowed_headers
        assert "access-control-allow-credentials" not in preflight.headers

        models = await client.get("/v1/models", headers={"Origin": ALLOWED})
        assert models.headers["access-control-allow-origin"] == ALLOWED
        exposed = models.headers["access-control-expose-headers"]
        assert "X-Request-Id" in exposed and "X-RateLimit-Remaining-Requests" in exposed

        stranger = await client.options(
            "/v1/chat/completions",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert stranger.status_code == 400
        assert "access-control-allow-origin" not in stranger.headers
        # The wallet-signed management API stays same-origin.
        management = await client.get("/api/v1/keys", headers={"Origin": ALLOWED})
        assert "access-control-allow-origin" not in management.headers
    finally:
        await client.aclose()
        await platform.close()  # type: ignore[attr-defined]


async def test_no_cors_by_default(tmp_path: Path) -> None:
    client, platform = await client_for(tmp_path, None)
    try:
        models = await client.get("/v1/models", headers={"Origin": ALLOWED})
        assert "access-control-allow-origin" not in models.headers
    finally:
        await client.aclose()
        await platform.close()  # type: ignore[attr-defined]
