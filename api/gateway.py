"""Public OpenAI-compatible routes: /v1/models and /v1/chat/completions (JSON and SSE).

The routes parse, call gateway.chat / gateway.models and shape HTTP: the metering and privacy
rules live there, shared with the other doors.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from api.bearer import authenticate_key
from api.body_limits import NOT_PARSED, parsed_json
from api.context import chat_service_of, platform_of
from api.errors import ApiError, error_object
from domain.errors import PryvError
from domain.json_codec import json_bytes
from gateway.chat import ChatStream, request_id_of
from gateway.chat_request import ChatCompletionRequest
from gateway.models import find_model, model_object, visible_models
from infra.log_format import REQUEST_ID

router = APIRouter(prefix="/v1", tags=["openai"])


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    """Models this key may call (its environment and entitlements)."""
    identity = await authenticate_key(request)
    models = await visible_models(platform_of(request), identity)
    return {"object": "list", "data": [model_object(m) for m in models]}


@router.get("/models/{model_id:path}")
async def get_model(request: Request, model_id: str) -> dict[str, Any]:
    identity = await authenticate_key(request)
    return model_object(await find_model(platform_of(request), identity, model_id))


def request_id_for(request: Request) -> str:
    # The id the access log already uses for this request when the caller gave none.
    return request_id_of(
        request.headers.get("x-request-id"),
        lambda: REQUEST_ID.get() or f"req_{uuid.uuid4().hex}",
    )


def _parse(request: Request) -> ChatCompletionRequest:
    raw = parsed_json(request.scope)  # BodyLimitMiddleware parsed (and bounded) it
    if raw is NOT_PARSED:
        raise ApiError(400, "invalid_json", "request body is not valid JSON")
    try:
        return ChatCompletionRequest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(
            400,
            "validation_error",
            f"{param}: {first['msg']}" if param else str(first["msg"]),
            param=param,
        ) from exc


@router.post("/chat/completions", response_model=None)
async def chat_completions(request: Request) -> Response:
    """OpenAI chat completions, metered: hold before the upstream call, settle after it.
    PII is removed (or pseudonymized) before anything is sent upstream."""
    identity = await authenticate_key(request)
    request_id = request_id_for(request)
    body = _parse(request)
    result = await chat_service_of(request).complete(identity, body, request_id)
    if isinstance(result, ChatStream):
        return _sse(result)
    return CompletionResponse(result.body, headers=result.metadata)


class CompletionResponse(JSONResponse):
    """A completion rendered by orjson (domain/json_codec.py). An upstream's NaN, which
    starlette's renderer refuses (a 500), becomes null."""

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def _sse_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json_bytes(payload) + b"\n\n"


def _sse(stream: ChatStream) -> Response:
    async def events() -> AsyncIterator[bytes]:
        try:
            async for chunk in stream:
                yield _sse_event(chunk)
            yield b"data: [DONE]\n\n"
        except PryvError as exc:  # the upstream failed mid-stream (already settled)
            yield _sse_event({"error": error_object(exc)})
        finally:
            await stream.aclose()

    return SettlingStreamingResponse(
        events(),
        settle_abandoned=stream.abandon,
        media_type="text/event-stream",
        headers={**stream.metadata, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class SettlingStreamingResponse(StreamingResponse):
    """A stream whose request is settled however it ends. Starlette neither closes the body
    iterator when the client leaves nor starts it if the client left before the first byte,
    so a generator's `finally` alone can miss the settlement (a free prefill). Here the
    iterator is closed explicitly (its `finally` settles what it saw), and if it never ran,
    `settle_abandoned` bills the prompt."""

    def __init__(
        self,
        content: AsyncIterator[str | bytes],
        *,
        settle_abandoned: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(content, **kwargs)
        self._content = content
        self._settle_abandoned = settle_abandoned

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                closing = getattr(self._content, "aclose", None)
                if closing is not None:
                    with contextlib.suppress(Exception):
                        await closing()
            finally:
                self._settle_abandoned()  # a no-op when the iterator already settled
