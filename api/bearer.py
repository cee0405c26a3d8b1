"""Bearer API-key authentication for /v1: `Authorization: Bearer pryv_live_…` (the rules are in
gateway.authentication)."""

from __future__ import annotations

from fastapi import Request

from api.context import platform_of
from api.errors import ApiError
from commands.metering import KeyIdentity
from gateway import authentication


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, "missing_api_key", "missing API key: send 'Authorization: Bearer pryv_…'"
        )
    return token.strip()


async def authenticate_key(request: Request) -> KeyIdentity:
    return await authentication.authenticate_key(
        platform_of(request), bearer_token(request), request.app.state.key_cache
    )
