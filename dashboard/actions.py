"""Destructive actions (create, edit, roll and revoke keys; checkout; settings) and the public
credit packs.

Each action is forwarded, in-process, to the public API app's own route (api.management,
api.billing), so it is verified by exactly the code that verifies API calls: the same body
models (unknown fields refused), `authenticate_wallet` with the platform's durable nonce store
(fresh ts, action and keyId bound, nonce claimed once), the same commands and the same 403
codes. The dashboard adds two things in front: a signed-in session and the CSRF guard, and it
overwrites `walletAddress` with the session's wallet — so the API's own check "the signer is
walletAddress" becomes "the signer is the signed-in wallet". A signature by any other key is the
API's 403 SIGNATURE_INVALID, and nothing is created, revoked, bought or changed.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Depends, Request, Response

from api.errors import ApiError
from dashboard.context import context, csrf_guard, current_session

MAX_BODY_BYTES = 64 * 1024
PASSED_HEADERS = ("retry-after",)

router = APIRouter(prefix="/app/api", tags=["dashboard"], dependencies=[Depends(csrf_guard)])
public = APIRouter(prefix="/app/api", tags=["dashboard"])


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "body_too_large", "request body too large")
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    return body


async def call_api(
    request: Request,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Call the public API app in-process and hand its answer back unchanged."""
    transport = httpx.ASGITransport(app=context(request).api_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://pryv-api.internal", timeout=120
    ) as api:
        answer = await api.request(method, path, json=body, headers=headers)
    headers = {k: v for k, v in answer.headers.items() if k.lower() in PASSED_HEADERS}
    return Response(
        answer.content,
        status_code=answer.status_code,
        media_type=answer.headers.get("content-type", "application/json"),
        headers=headers,
    )


async def _signed(request: Request, method: str, path: str) -> Response:
    wallet = (await current_session(request)).wallet
    body = await _json_body(request)
    body["walletAddress"] = wallet  # the session's wallet must be the signer
    return await call_api(request, method, path, body)


@router.post("/keys")
async def create_key(request: Request) -> Response:
    """Body: the key's settings plus `message` and `signature` (action=create)."""
    return await _signed(request, "POST", "/api/v1/keys")


@router.delete("/keys/{key_id}")
async def revoke_key(request: Request, key_id: str) -> Response:
    """Body: `message` and `signature` (action=revoke, keyId=key_id), optional `reason`."""
    return await _signed(request, "DELETE", f"/api/v1/keys/{quote(key_id, safe='')}")


@router.patch("/keys/{key_id}")
async def update_key(request: Request, key_id: str) -> Response:
    """Body: the terms to change plus `message` and `signature` (action=update, keyId)."""
    return await _signed(request, "PATCH", f"/api/v1/keys/{quote(key_id, safe='')}")


@router.post("/keys/{key_id}/rotate")
async def rotate_key(request: Request, key_id: str) -> Response:
    """Body: `gracePeriodSeconds` plus `message` and `signature` (action=rotate, keyId)."""
    return await _signed(request, "POST", f"/api/v1/keys/{quote(key_id, safe='')}/rotate")


PLAYGROUND_DOORS = {"preview": "/v1/pii/preview", "chat": "/v1/chat/completions"}


@router.post("/playground/{door}")
async def playground(request: Request, door: str) -> Response:
    """The playground's calls: body `key` (the page's short-lived key, kept in the page's
    memory only) and the /v1 request, forwarded to the API as `Authorization: Bearer` — so it
    is metered, redacted and refused exactly like any client's call (no CORS needed)."""
    path = PLAYGROUND_DOORS.get(door)
    if path is None:
        raise ApiError(404, "not_found", f"no playground call {door!r}")
    body = await _json_body(request)
    key = body.pop("key", None)
    if not isinstance(key, str) or not key:
        raise ApiError(400, "validation_error", "key: the playground key is required", param="key")
    body.pop("stream", None)  # the playground shows whole answers
    return await call_api(request, "POST", path, body, {"Authorization": f"Bearer {key}"})


@router.post("/checkout")
async def checkout(request: Request) -> Response:
    """Body: `usdAmount` or `packId` plus `message` and `signature` (action=checkout)."""
    return await _signed(request, "POST", "/api/v1/billing/checkout")


@router.put("/settings")
async def update_settings(request: Request) -> Response:
    """Body: `privacy` and/or `consent` plus `message` and `signature` (action=settings)."""
    return await _signed(request, "PUT", "/api/v1/settings")


@public.get("/credit-packs")
async def credit_packs(request: Request) -> Response:
    """The API's public credit packs, custom-amount bounds and whether checkout is available."""
    return await call_api(request, "GET", "/api/v1/billing/credit-packs")
