"""Sign-in with Ethereum: GET /auth/nonce, POST /auth/login, POST /auth/logout, GET /auth/session.

Login sets a 30-minute httpOnly, SameSite=Strict cookie (Secure, with the __Host- prefix, over
https) naming a server-side session; logout deletes the session and the cookie.
"""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.errors import ApiError
from dashboard.context import (
    COOKIE,
    SECURE_COOKIE,
    context,
    cookie_secure,
    csrf_guard,
    current_session,
    login_policy,
    now,
    session_token,
)
from domain.siwe import SiweError
from domain.wallet_messages import WalletAuthError
from gateway.sign_in import verify_login
from infra.dashboard_sessions import Session
from infra.wallet_signatures import normalize_address

STATEMENT = "Sign in to the Pryv platform dashboard."

router = APIRouter(prefix="/auth", tags=["auth"])
mutating = APIRouter(prefix="/auth", tags=["auth"], dependencies=[Depends(csrf_guard)])


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str = Field(min_length=1, max_length=4096)
    signature: str = Field(min_length=1, max_length=200)


def _session_object(session: Session) -> dict[str, Any]:
    return {
        "object": "session",
        "wallet": session.wallet,
        "expiresAt": session.expires_at.isoformat().replace("+00:00", "Z"),
    }


@router.get("/nonce")
async def nonce(
    request: Request, address: str | None = Query(default=None, max_length=64)
) -> dict[str, Any]:
    """A single-use nonce for one EIP-4361 sign-in message, with the fields the page must use.
    Given `address`, also its EIP-55 form, which the message must carry (wallets often report
    lower case, and the page has no keccak to checksum it)."""
    policy = login_policy(request)
    checksummed = None
    if address is not None:
        try:
            checksummed = to_checksum_address(normalize_address(address))
        except WalletAuthError as exc:
            raise ApiError(400, "invalid_params", exc.message, param="address") from exc
    issued = context(request).nonces.issue(now())
    return {
        "nonce": issued.nonce,
        "address": checksummed,
        "domain": policy.domain,
        "statement": STATEMENT,
        "chainId": min(policy.chain_ids),
        "version": "1",
        "maxLifetimeSeconds": int(policy.max_lifetime.total_seconds()),
        "expiresAt": issued.expires_at.isoformat().replace("+00:00", "Z"),
    }


@mutating.post("/login")
async def login(request: Request, body: LoginRequest, response: Response) -> dict[str, Any]:
    ctx = context(request)
    try:
        wallet = await verify_login(
            body.message,
            body.signature,
            policy=login_policy(request),
            nonces=ctx.nonces,
            store=ctx.platform.nonces,
            now=now(),
        )
    except SiweError as exc:
        raise ApiError(403, exc.code, exc.message) from exc
    await ctx.sessions.delete(session_token(request))  # never keep a session across sign-ins
    token, session = await ctx.sessions.create(wallet, now())
    secure = cookie_secure(request)
    response.set_cookie(
        SECURE_COOKIE if secure else COOKIE,
        token,
        max_age=int(ctx.sessions.ttl.total_seconds()),
        path="/",
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    return _session_object(session)


@mutating.post("/logout")
async def logout(request: Request, response: Response) -> dict[str, Any]:
    await context(request).sessions.delete(session_token(request))
    for name, secure in ((COOKIE, False), (SECURE_COOKIE, True)):
        if name in request.cookies:
            response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="strict")
    return {"object": "session", "signedOut": True}


@router.get("/session")
async def session(request: Request) -> dict[str, Any]:
    return _session_object(await current_session(request))
