"""Public OpenAI-compatible routes: /v1/models and /v1/chat/completions (JSON and SSE).

The route only orchestrates: authenticate, validate, price the hold, admit (commands.metering),
call the upstream, settle. Streaming answers are settled from the upstream's own usage report,
or — when the client leaves or the upstream gives none — from the tokens actually streamed,
flagged as estimated.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from api.bearer import authenticate_key
from api.body_limits import NOT_PARSED, parsed_json
from api.chat_schemas import ChatCompletionRequest
from api.errors import ApiError
from api.observability import REQUEST_ID
from api.privacy import (
    Prepared,
    PrivacyFilter,
    StreamRestorers,
    counts_header,
    resolve_plan,
    restore_answer,
)
from bootstrap.platform import Platform
from commands.admission import Admission, Verdict
from commands.metering import AdmissionRefused, MeteredRequest
from domain.catalog import ModelSpec
from domain.money import micros_to_usd
from domain.pricing import Usage, hold_micros, output_budget
from domain.tokens import estimate_request_tokens, estimate_text_tokens, request_tokens_ceiling
from infra.upstreams import UpstreamError
from projections import keys

router = APIRouter(prefix="/v1", tags=["openai"])

REQUEST_ID_FORMAT = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def model_object(model: ModelSpec) -> dict[str, Any]:
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": model.owned_by,
        "context_length": model.context_length,
        "max_output_tokens": model.max_output_tokens,
        "pricing": {
            "input_per_million_usd": micros_to_usd(model.input_micros_per_million),
            "output_per_million_usd": micros_to_usd(model.output_micros_per_million),
        },
        "test_only": model.test_only,
        "description": model.description,
    }


async def _visible_models(request: Request) -> list[ModelSpec]:
    platform = _platform(request)
    identity = await authenticate_key(request, platform)
    record = await keys.read_key(platform.read_store, identity.key_id)
    if (
        record is None
        or not record.usable_now()
        or await platform.meter.is_revoked(identity.key_id)
    ):
        raise ApiError(401, "inactive_api_key", "this API key is revoked or expired")
    return platform.catalog.visible_to(identity.env, record.models)


@router.get("/models")
async def list_models(request: Request) -> dict[str, Any]:
    """Models this key may call (its environment and entitlements)."""
    return {"object": "list", "data": [model_object(m) for m in await _visible_models(request)]}


@router.get("/models/{model_id:path}")
async def get_model(request: Request, model_id: str) -> dict[str, Any]:
    for model in await _visible_models(request):
        if model.id == model_id:
            return model_object(model)
    raise ApiError(
        404,
        "model_not_found",
        f"model {model_id!r} does not exist or is not available to this key",
        param="model",
    )


def rate_headers(admission: Admission) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, state in (("RPM", admission.rpm), ("TPM", admission.tpm)):
        if state is not None:
            headers[f"X-RateLimit-Limit-{name}"] = str(state.limit)
            headers[f"X-RateLimit-Remaining-{name}"] = str(state.remaining)
            headers[f"X-RateLimit-Reset-{name}"] = str(state.reset_seconds)
    if admission.retry_after_seconds is not None:
        headers["Retry-After"] = str(admission.retry_after_seconds)
    return headers


def refusal(admission: Admission, request_id: str) -> ApiError:
    headers = {**rate_headers(admission), "X-Request-Id": request_id}
    status, code, message = {
        # The key authenticated (its identity is known), yet the key index lacks it: the index
        # is being rebuilt. Not 401 — SDKs treat that as final.
        Verdict.UNKNOWN_KEY: (
            503,
            "read_models_rebuilding",
            "the key index is being rebuilt after a storage failure; retry shortly",
        ),
        Verdict.INACTIVE: (401, "inactive_api_key", "this API key is revoked or expired"),
        Verdict.MODEL_NOT_ALLOWED: (
            403,
            "model_not_allowed",
            "this API key is not entitled to this model",
        ),
        Verdict.DUPLICATE: (
            409,
            "duplicate_request_id",
            "this X-Request-Id was already used on this key",
        ),
        Verdict.RPM: (429, "rate_limit_exceeded_rpm", "requests-per-minute limit reached"),
        Verdict.TPM: (429, "rate_limit_exceeded_tpm", "tokens-per-minute limit reached"),
        Verdict.BUDGET: (402, "budget_exceeded", "this key's monthly budget is used up"),
        Verdict.REBUILDING: (
            503,
            "read_models_rebuilding",
            "balances are being rebuilt after a storage failure; retry shortly",
        ),
        Verdict.CREDITS: (
            402,
            "insufficient_credits",
            "not enough credits for this request; add credits in Billing",
        ),
    }[admission.verdict]
    if status == 503:
        headers.setdefault("Retry-After", "1")
    return ApiError(status, code, message, headers=headers)


def _request_id(request: Request) -> str:
    supplied = request.headers.get("x-request-id")
    if supplied is None:  # the id the access log already uses for this request
        return REQUEST_ID.get() or f"req_{uuid.uuid4().hex}"
    if not REQUEST_ID_FORMAT.match(supplied):
        raise ApiError(
            400, "invalid_request_id", "X-Request-Id must be 1-128 characters of [A-Za-z0-9._:-]"
        )
    return supplied


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


def _usage(reported: Any, prompt_estimate: int, completion_text: str) -> Usage:
    """The upstream's usage when it gave one; otherwise our count, flagged as estimated."""
    if isinstance(reported, dict) and isinstance(reported.get("prompt_tokens"), int):
        return Usage(int(reported["prompt_tokens"]), int(reported.get("completion_tokens") or 0))
    return Usage(prompt_estimate, estimate_text_tokens(completion_text), estimated=True)


def _upstream_error(exc: UpstreamError, headers: dict[str, str]) -> ApiError:
    return ApiError(
        502, "upstream_error", f"the model server failed: {exc.message}", headers=headers
    )


@router.post("/chat/completions", response_model=None)
async def chat_completions(request: Request) -> Response:
    """OpenAI chat completions, metered: hold before the upstream call, settle after it.
    PII is removed (or pseudonymized) before anything is sent upstream.

    Order matters for cost: authenticate, then the cheap admission precheck (key status,
    entitlement, RPM, a credit floor), and only then the expensive work (redaction, fetches,
    OCR), the exact hold, and the upstream call. A refused request does no PII work."""
    platform = _platform(request)
    identity = await authenticate_key(request, platform)
    request_id = _request_id(request)
    body = _parse(request)
    model = platform.catalog.get(body.model)
    if model is None:
        raise ApiError(400, "invalid_model", f"unknown model {body.model!r}", param="model")
    if not model.usable_by(identity.env):
        raise ApiError(
            403,
            "model_not_allowed",
            f"{identity.env} keys cannot use {'test' if model.test_only else 'live'}"
            f" model {model.id!r}",
            param="model",
        )
    upstream_body = body.upstream_body(model.upstream_model)
    floor_tokens = min(estimate_text_tokens(body.prompt_text()), model.context_length)
    try:
        await platform.meter.precheck(
            identity,
            model,
            request_id,
            floor_micros=hold_micros(model, floor_tokens, 0),
            floor_tokens=floor_tokens,
        )
    except AdmissionRefused as refused:
        raise refusal(refused.admission, request_id) from None
    plan = resolve_plan(
        mode=body.privacy_mode,
        entities=body.pii_entities,
        config=body.pii_config,
        skip=body.skip_pii_redaction,
        account=await request.app.state.account_settings.get(identity.account_id),
    )
    privacy: PrivacyFilter = request.app.state.privacy
    prepared = await privacy.prepare(
        upstream_body, plan, pdfs=body.pdfs or (), urls=body.urls or ()
    )
    # Everything forwarded counts: messages, tools and their schemas, response_format,
    # prediction, documents, fetched pages.
    prompt_tokens = estimate_request_tokens(prepared.body)
    if prompt_tokens >= model.context_length:
        raise ApiError(
            400,
            "context_length_exceeded",
            f"about {prompt_tokens} prompt tokens; {model.id} takes {model.context_length}",
            param="messages",
        )
    max_out = output_budget(model, prompt_tokens, body.output_limit())
    prepared.body["max_tokens"] = max_out
    # No prompt the upstream accepts is longer than its context: the ceiling need not be either.
    prompt_hold_tokens = min(request_tokens_ceiling(prepared.body), model.context_length)
    try:
        metered = await platform.meter.admit(
            identity,
            model,
            request_id,
            hold_micros=hold_micros(model, prompt_hold_tokens, max_out),
            estimated_tokens=prompt_tokens + max_out,
            prechecked=True,
        )
    except AdmissionRefused as refused:
        raise refusal(refused.admission, request_id) from None
    exchange = Exchange(
        platform=platform,
        metered=metered,
        prompt_tokens=prompt_tokens,
        prepared=prepared,
        headers={
            **rate_headers(metered.admission),
            "X-Request-Id": request_id,
            "X-Pryv-Privacy-Mode": plan.mode,
            "X-Pryv-PII-Redacted": counts_header(prepared.counts),
        },
    )
    if body.stream:
        return await _stream(exchange, body, prepared.body)
    return await _complete(exchange, prepared.body)


@dataclass
class Exchange:
    """One metered request on its way through the upstream."""

    platform: Platform
    metered: MeteredRequest
    prompt_tokens: int
    prepared: Prepared
    headers: dict[str, str]
    settled: bool = False

    def settle(self, spent: Usage, outcome: str) -> None:
        """The one settlement of this request; later calls are no-ops (a stream has several
        places that may be the last to see it)."""
        if self.settled:
            return
        self.settled = True
        # A task of its own: the answer does not wait for the debit's commit, and a client that
        # hangs up cannot cancel it. A crash in the milliseconds before it commits leaves the
        # hold to the sweeper (expired, flagged).
        self.platform.meter.settle_in_background(
            self.metered, spent, outcome, pii_counts=dict(self.prepared.counts)
        )

    def abandoned(self, completion_text: str = "") -> Usage:
        """What a request the client left costs once the upstream was called: the prompt (it
        was processed) and whatever was streamed, estimated."""
        return Usage(self.prompt_tokens, estimate_text_tokens(completion_text), estimated=True)


async def _complete(exchange: Exchange, upstream_body: dict[str, Any]) -> Response:
    metered = exchange.metered
    spent, outcome = Usage(exchange.prompt_tokens, 0, estimated=True), "client_abort"
    try:
        answer = await exchange.platform.upstreams.for_model(metered.model).complete(
            metered.model, upstream_body
        )
        text = "".join(
            str((choice.get("message") or {}).get("content") or "")
            for choice in answer.get("choices") or []
        )
        spent, outcome = _usage(answer.get("usage"), exchange.prompt_tokens, text), "ok"
    except UpstreamError as exc:
        spent, outcome = exc.usage or Usage(0, 0), "upstream_error"
        raise _upstream_error(exc, exchange.headers) from None
    finally:
        exchange.settle(spent, outcome)
    if exchange.prepared.vault is not None:
        restore_answer(answer, exchange.prepared.vault)
    answer["model"] = metered.model.id
    answer["usage"] = {
        "prompt_tokens": spent.prompt_tokens,
        "completion_tokens": spent.completion_tokens,
        "total_tokens": spent.total_tokens,
    }
    return JSONResponse(answer, headers=exchange.headers)


async def _stream(
    exchange: Exchange, body: ChatCompletionRequest, upstream_body: dict[str, Any]
) -> Response:
    metered = exchange.metered
    chunks = exchange.platform.upstreams.for_model(metered.model).stream(
        metered.model, upstream_body
    )
    iterator = aiter(chunks)
    try:
        first: dict[str, Any] | None = await anext(iterator)
    except StopAsyncIteration:
        first = None
    except UpstreamError as exc:
        # Nothing reached the client: a normal error response, and a settlement for the prompt
        # only if the upstream reported charging it.
        exchange.settle(exc.usage or Usage(0, 0), "upstream_error")
        raise _upstream_error(exc, exchange.headers) from None
    except BaseException:
        exchange.settle(exchange.abandoned(), "client_abort")
        raise
    vault = exchange.prepared.vault
    restorers = StreamRestorers(vault) if vault is not None else None

    def sse(payload: dict[str, Any]) -> str:
        return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"

    async def events() -> AsyncIterator[str]:
        streamed: list[str] = []
        reported: Any = None
        outcome = "client_abort"
        template: dict[str, Any] = {}
        try:
            chunk = first
            while chunk is not None:
                if chunk.get("usage") is not None:
                    reported = chunk["usage"]
                    if not body.wants_usage_chunk():
                        chunk = {k: v for k, v in chunk.items() if k != "usage"}
                for choice in chunk.get("choices") or []:
                    streamed.append(str((choice.get("delta") or {}).get("content") or ""))
                if chunk.get("choices") or "usage" in chunk:
                    chunk["model"] = metered.model.id
                    template = {
                        k: v for k, v in chunk.items() if k in ("id", "object", "created", "model")
                    }
                    if restorers is not None:
                        restorers.chunk(chunk)
                    yield sse(chunk)
                chunk = await anext(iterator, None)
            if restorers is not None:  # text held back at the very end (no finish_reason seen)
                for index, text in restorers.leftovers().items():
                    yield sse(
                        {
                            **template,
                            "choices": [
                                {"index": index, "delta": {"content": text}, "finish_reason": None}
                            ],
                        }
                    )
            outcome = "ok"
            yield "data: [DONE]\n\n"
        except UpstreamError as exc:
            outcome = "upstream_error"
            error = {
                "message": f"the model server failed: {exc.message}",
                "type": "api_error",
                "code": "upstream_error",
                "param": None,
            }
            yield sse({"error": error})
        finally:
            text = "".join(streamed)
            if outcome == "ok" or reported is not None:
                spent = _usage(reported, exchange.prompt_tokens, text)
            else:  # the upstream was called: the prompt is billed, and what was streamed
                spent = exchange.abandoned(text)
            exchange.settle(spent, outcome)
            with contextlib.suppress(BaseException):
                await chunks.aclose()

    return SettlingStreamingResponse(
        events(),
        settle_abandoned=lambda: exchange.settle(exchange.abandoned(), "client_abort"),
        media_type="text/event-stream",
        headers={**exchange.headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class SettlingStreamingResponse(StreamingResponse):
    """A stream whose request is settled however it ends. Starlette neither closes the body
    iterator when the client leaves nor starts it if the client left before the first byte,
    so a generator's `finally` alone can miss the settlement (a free prefill). Here the
    iterator is closed explicitly (its `finally` settles what it saw), and if it never ran,
    `settle_abandoned` bills the prompt."""

    def __init__(
        self, content: AsyncIterator[str], *, settle_abandoned: Callable[[], None], **kwargs: Any
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
