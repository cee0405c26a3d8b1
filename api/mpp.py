"""The MPP door (/mpp/*): free discovery, a paid PII preview, API keys bought by charge, and a
chat paid from a Tempo stream channel as it streams. gateway.mpp holds the rules; here the
Payment scheme's HTTP shapes: `WWW-Authenticate: Payment` challenges with RFC 9457 problem
bodies on 402, `Payment-Receipt` on success, SSE events for the session. docs/mpp.md.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from api.body_limits import NOT_PARSED, parsed_json
from api.errors import ApiError
from api.gateway import SettlingStreamingResponse, request_id_for
from gateway.chat_request import ChatCompletionRequest
from gateway.mpp.problems import PaymentProblem
from gateway.mpp.service import BuyKeyRequest, MppService, Paid
from gateway.mpp.session import SessionStream
from gateway.preview import PiiPreviewRequest

router = APIRouter(prefix="/mpp", tags=["mpp"])

PROBLEM = {"application/problem+json": {"schema": {"type": "object"}}}
PAID_RESPONSES: dict[int | str, dict[str, Any]] = {
    "402": {"description": "Payment Required: a Payment challenge", "content": PROBLEM},
    "403": {"description": "Paid, but refused (the payment stays credited)", "content": PROBLEM},
}


def mpp_of(request: Request) -> MppService:
    service: MppService = request.app.state.mpp
    return service


def credential_of(request: Request) -> str | None:
    """`Authorization: Payment …`, or `Payment-Authorization` when Authorization must carry
    something else (a Bearer token for a proxy)."""
    authorization = request.headers.get("authorization")
    if authorization and authorization.lstrip().lower().startswith("payment"):
        return authorization
    return request.headers.get("payment-authorization")


PROBLEM_TYPE = "application/problem+json"


def problem_response(problem: PaymentProblem) -> Response:
    """RFC 9457 body, `Cache-Control: no-store`, one `WWW-Authenticate` per challenge."""
    response = JSONResponse(
        problem.body(),
        status_code=problem.status,
        headers={"Cache-Control": "no-store"},
        media_type=PROBLEM_TYPE,
    )
    for challenge in problem.challenges:
        response.headers.append("WWW-Authenticate", challenge)
    return response


def paid_response(paid: Paid, *, body: bool = True) -> Response:
    headers = {**paid.headers, "Payment-Receipt": paid.receipt, "Cache-Control": "private"}
    if not body or paid.body is None:
        return Response(status_code=200, headers=headers)
    return JSONResponse(paid.body, headers=headers)


def _body(request: Request, model: type[BaseModel]) -> Any:
    raw = parsed_json(request.scope)
    if raw is NOT_PARSED:
        raise ApiError(400, "invalid_json", "request body is not valid JSON")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(400, "validation_error", str(first["msg"]), param=param) from exc


SERVICE_INFO = {
    "categories": ["compute", "developer-tools"],
    "docs": {
        "homepage": "https://platform.pryv.ai/docs",
        "apiReference": "https://api.pryv.ai/docs",
    },
}


@router.get("/openapi.json", response_model=None)
async def discovery(request: Request) -> Response:
    """Free discovery: the /mpp operations of the OpenAPI document, with their offers."""
    document = request.app.openapi()
    paths = {p: ops for p, ops in document["paths"].items() if p.startswith("/mpp/")}
    return JSONResponse(
        {**document, "paths": paths},
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.post(
    "/pii/preview", response_model=None, responses=PAID_RESPONSES, operation_id="mpp_pii_preview"
)
async def paid_preview(request: Request) -> Response:
    """The same answer as /v1/pii/preview, paid with one Tempo charge of $0.05."""
    body = _body(request, PiiPreviewRequest)
    try:
        paid = await mpp_of(request).paid_preview(
            credential_of(request), await request.body(), body, request_id_for(request)
        )
    except PaymentProblem as problem:
        return problem_response(problem)
    return paid_response(paid)


@router.post("/keys", response_model=None, responses=PAID_RESPONSES, operation_id="mpp_keys")
async def buy_key(request: Request) -> Response:
    """Buy a credit pack by charge: the payer's account is credited and a new API key is
    returned, shown once."""
    body = _body(request, BuyKeyRequest)
    try:
        paid = await mpp_of(request).buy_key(credential_of(request), await request.body(), body)
    except PaymentProblem as problem:
        return problem_response(problem)
    return paid_response(paid)


SESSION_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PAID_RESPONSES,
    "410": {"description": "The channel is closed or unknown", "content": PROBLEM},
}


@router.post(
    "/chat/completions",
    response_model=None,
    responses=SESSION_RESPONSES,
    operation_id="mpp_chat_completions",
)
async def session_chat(request: Request) -> Response:
    """A streamed chat paid from a Tempo stream channel (`session` intent). A request without
    a body carries a voucher, top-up or close for the channel."""
    raw = await request.body()
    body = _body(request, ChatCompletionRequest) if raw.strip() else None
    return await _session(request, body)


@router.head("/chat/completions", response_model=None, include_in_schema=False)
async def session_voucher(request: Request) -> Response:
    """A voucher (or top-up) for a running session, with no body either way."""
    return await _session(request, None, head=True)


async def _session(
    request: Request, body: ChatCompletionRequest | None, *, head: bool = False
) -> Response:
    try:
        result = await mpp_of(request).session(
            credential_of(request), body, request_id_for(request)
        )
    except PaymentProblem as problem:
        if head:  # the same status and challenges, no body
            response = Response(status_code=problem.status, headers={"Cache-Control": "no-store"})
            for challenge in problem.challenges:
                response.headers.append("WWW-Authenticate", challenge)
            return response
        return problem_response(problem)
    if isinstance(result, SessionStream):
        return _session_sse(result)
    return paid_response(result, body=not head)


def _session_sse(stream: SessionStream) -> Response:
    async def events() -> AsyncIterator[str]:
        async for item in stream:
            data = json.dumps(item.data, separators=(",", ":"))
            if item.kind == "chunk":
                yield f"data: {data}\n\n"
            else:
                yield f"event: {item.kind}\ndata: {data}\n\n"
        yield "data: [DONE]\n\n"

    return SettlingStreamingResponse(
        events(),
        settle_abandoned=lambda: None,  # every increment was paid before it was sent
        media_type="text/event-stream",
        headers={
            "Payment-Receipt": stream.initial_receipt,
            "Cache-Control": "private, no-cache",
            "X-Accel-Buffering": "no",
            "X-Request-Id": stream.request_id,
        },
    )


class FaucetRequest(BaseModel):
    address: str
    amount: int


@router.post("/faucet", include_in_schema=False)
async def faucet(request: Request) -> dict[str, Any]:
    """Test money on the in-memory chain (404 on a real one): up to 100 USD a call."""
    body = _body(request, FaucetRequest)
    return await mpp_of(request).faucet(body.address, body.amount)
