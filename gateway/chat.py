"""A private, metered chat completion, whichever door it came through (/v1, MCP, MPP).

The steps, in an order that keeps refusals cheap: the model and the key's environment, the
admission precheck (key status, entitlement, RPM, a credit floor; skipped when the request
turns redaction off and brings no documents, as admission is then as cheap), and only then the
expensive work (redaction, fetches, OCR), the exact hold, the upstream call, the settlement
and, in pseudonymize mode, the restoration of the originals. Streamed answers are settled from
the upstream's own usage report, or — when the caller leaves or the upstream gives none — from
the tokens actually streamed, flagged as estimated; a caller that leaves after the upstream was
called pays for the prompt.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bootstrap.platform import Platform
from commands.metering import AdmissionRefused, KeyIdentity, MeteredRequest
from domain.catalog import ModelSpec
from domain.errors import ErrorKind, PryvError
from domain.pricing import Usage, cost_micros, hold_micros, output_budget
from domain.tokens import estimate_request_tokens, estimate_text_tokens, request_tokens_ceiling
from gateway.chat_request import ChatCompletionRequest
from gateway.refusals import rate_metadata, refusal
from infra.upstreams import UpstreamError
from privacy.account_defaults import AccountSettingsCache
from privacy.pipeline import Prepared, PrivacyFilter
from privacy.plan import PrivacyPlan, resolve_plan
from privacy.restore import StreamRestorers, restore_answer

REQUEST_ID_FORMAT = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(supplied: str | None, default: Callable[[], str]) -> str:
    """The caller's idempotency id (checked), or `default()` when it gave none."""
    if supplied is None:
        return default()
    if not REQUEST_ID_FORMAT.match(supplied):
        raise PryvError(
            "X-Request-Id must be 1-128 characters of [A-Za-z0-9._:-]", code="invalid_request_id"
        )
    return supplied


def counts_summary(counts: Mapping[str, int]) -> str:
    """`EMAIL_ADDRESS=2,PERSON=1`, or `none`: types and counts, never values."""
    return ",".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"


@dataclass(frozen=True)
class Completion:
    """A whole chat.completion; `metadata` carries the rate-limit and privacy figures."""

    body: dict[str, Any]
    metadata: dict[str, str]
    charged_micros: int = 0  # what the settlement debits (the cost, never beyond the hold)


class ChatService:
    """The chat pipeline over one platform: `complete` is all a door needs to call."""

    def __init__(
        self, platform: Platform, privacy: PrivacyFilter, account_defaults: AccountSettingsCache
    ) -> None:
        self.platform = platform
        self.privacy = privacy
        self.account_defaults = account_defaults

    def model_for(self, env: str, body: ChatCompletionRequest) -> ModelSpec:
        """The catalog model `body` names, if a key of `env` may use it."""
        model = self.platform.catalog.get(body.model)
        if model is None:
            raise PryvError(f"unknown model {body.model!r}", code="invalid_model", param="model")
        if not model.usable_by(env):
            raise PryvError(
                f"{env} keys cannot use {'test' if model.test_only else 'live'} model {model.id!r}",
                code="model_not_allowed",
                kind=ErrorKind.PERMISSION,
                param="model",
            )
        return model

    async def prepare(
        self,
        model: ModelSpec,
        account_id: str,
        body: ChatCompletionRequest,
        upstream_body: dict[str, Any] | None = None,
    ) -> PrivateRequest:
        """The expensive, private part every door shares: the privacy plan (request, then the
        account's defaults), redaction of every forwarded field, fetches, OCR, the context
        check and the output budget. `upstream_body`: `body.upstream_body(...)` if the caller
        already built (and so checked) it."""
        if upstream_body is None:
            upstream_body = body.upstream_body(model.upstream_model)
        plan = resolve_plan(
            mode=body.privacy_mode,
            entities=body.pii_entities,
            config=body.pii_config,
            skip=body.skip_pii_redaction,
            account=await self.account_defaults.get(account_id),
        )
        prepared = await self.privacy.prepare(
            upstream_body, plan, pdfs=body.pdfs or (), urls=body.urls or ()
        )
        # Everything forwarded counts: messages, tools and their schemas, response_format,
        # prediction, documents, fetched pages.
        prompt_tokens = estimate_request_tokens(prepared.body)
        if prompt_tokens >= model.context_length:
            raise PryvError(
                f"about {prompt_tokens} prompt tokens; {model.id} takes {model.context_length}",
                code="context_length_exceeded",
                param="messages",
            )
        max_out = output_budget(model, prompt_tokens, body.output_limit())
        prepared.body["max_tokens"] = max_out
        return PrivateRequest(model, prepared, prompt_tokens, max_out, plan)

    async def complete(
        self, identity: KeyIdentity, body: ChatCompletionRequest, request_id: str
    ) -> Completion | ChatStream:
        """Hold, call upstream, settle: a Completion, or (for `stream: true`) a ChatStream
        whose first chunk has already arrived. Refusals raise PryvError."""
        platform = self.platform
        model = self.model_for(identity.env, body)
        upstream_body = body.upstream_body(model.upstream_model)  # refuses bad fields first
        prechecked = not body.needs_no_private_work()  # else one Redis round trip fewer
        if prechecked:
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
        private = await self.prepare(model, identity.account_id, body, upstream_body)
        prepared, prompt_tokens, max_out, plan = (
            private.prepared,
            private.prompt_tokens,
            private.max_out,
            private.plan,
        )
        # No prompt the upstream accepts is longer than its context: the ceiling need not be.
        prompt_hold_tokens = min(request_tokens_ceiling(prepared.body), model.context_length)
        try:
            metered = await platform.meter.admit(
                identity,
                model,
                request_id,
                hold_micros=hold_micros(model, prompt_hold_tokens, max_out),
                estimated_tokens=prompt_tokens + max_out,
                prechecked=prechecked,
            )
        except AdmissionRefused as refused:
            raise refusal(refused.admission, request_id) from None
        exchange = Exchange(
            platform=platform,
            metered=metered,
            prompt_tokens=prompt_tokens,
            prepared=prepared,
            metadata={
                **rate_metadata(metered.admission),
                "X-Request-Id": request_id,
                "X-Pryv-Privacy-Mode": plan.mode,
                "X-Pryv-PII-Redacted": counts_summary(prepared.counts),
            },
        )
        if body.stream:
            return await ChatStream.open(exchange, body.wants_usage_chunk())
        return await _complete(exchange)


@dataclass(frozen=True)
class PrivateRequest:
    """A chat request made private and sized: the body to forward (redacted, `max_tokens`
    set to the output budget), its estimated prompt tokens, and the plan it followed."""

    model: ModelSpec
    prepared: Prepared
    prompt_tokens: int
    max_out: int
    plan: PrivacyPlan


@dataclass
class Exchange:
    """One metered request on its way through the upstream."""

    platform: Platform
    metered: MeteredRequest
    prompt_tokens: int
    prepared: Prepared
    metadata: dict[str, str]
    settled: bool = False
    spent: Usage | None = None

    def settle(self, spent: Usage, outcome: str) -> None:
        """The one settlement of this request; later calls are no-ops (a stream has several
        places that may be the last to see it)."""
        if self.settled:
            return
        self.settled, self.spent = True, spent
        # A task of its own: the answer does not wait for the debit's commit, and a caller that
        # hangs up cannot cancel it. A crash in the milliseconds before it commits leaves the
        # hold to the sweeper (expired, flagged).
        self.platform.meter.settle_in_background(
            self.metered, spent, outcome, pii_counts=dict(self.prepared.counts)
        )

    def charged_micros(self) -> int:
        """What the settlement debits: the cost of what was spent, never beyond the hold."""
        if self.spent is None:
            return 0
        return min(cost_micros(self.metered.model, self.spent), self.metered.hold_micros)

    def abandoned(self, completion_text: str = "") -> Usage:
        """What a request the caller left costs once the upstream was called: the prompt (it
        was processed) and whatever was streamed, estimated."""
        return Usage(self.prompt_tokens, estimate_text_tokens(completion_text), estimated=True)

    def upstream_failure(self, exc: UpstreamError) -> PryvError:
        return PryvError(
            f"the model server failed: {exc.message}",
            code="upstream_error",
            kind=ErrorKind.UPSTREAM,
            metadata=self.metadata,
        )


def _usage(reported: Any, prompt_estimate: int, completion_text: str) -> Usage:
    """The upstream's usage when it gave one; otherwise our count, flagged as estimated."""
    if isinstance(reported, dict) and isinstance(reported.get("prompt_tokens"), int):
        return Usage(int(reported["prompt_tokens"]), int(reported.get("completion_tokens") or 0))
    return Usage(prompt_estimate, estimate_text_tokens(completion_text), estimated=True)


async def _complete(exchange: Exchange) -> Completion:
    metered = exchange.metered
    spent, outcome = Usage(exchange.prompt_tokens, 0, estimated=True), "client_abort"
    try:
        answer = await exchange.platform.upstreams.for_model(metered.model).complete(
            metered.model, exchange.prepared.body
        )
        text = "".join(
            str((choice.get("message") or {}).get("content") or "")
            for choice in answer.get("choices") or []
        )
        spent, outcome = _usage(answer.get("usage"), exchange.prompt_tokens, text), "ok"
    except UpstreamError as exc:
        spent, outcome = exc.usage or Usage(0, 0), "upstream_error"
        raise exchange.upstream_failure(exc) from None
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
    return Completion(answer, exchange.metadata, exchange.charged_micros())


class ChatStream:
    """The chunks of a streamed answer (chat.completion.chunk objects, originals restored).

    However it ends, the request is settled once: iterated to the end (upstream usage), an
    upstream failure mid-stream (raised as PryvError after settling), `aclose()` before the end
    (what was streamed, estimated), or `abandon()` when it was never iterated (the prompt).
    """

    def __init__(
        self,
        exchange: Exchange,
        upstream: AsyncIterator[dict[str, Any]],
        first: dict[str, Any] | None,
        wants_usage: bool,
    ) -> None:
        self.metadata = exchange.metadata
        self._exchange = exchange
        self._chunks = self._relay(upstream, first, wants_usage)

    @classmethod
    async def open(cls, exchange: Exchange, wants_usage: bool) -> ChatStream:
        """Call the upstream and wait for its first chunk: a failure before any byte reached
        the caller is a plain error (settled for the prompt only if the upstream charged it)."""
        model = exchange.metered.model
        upstream = aiter(
            exchange.platform.upstreams.for_model(model).stream(model, exchange.prepared.body)
        )
        try:
            first: dict[str, Any] | None = await anext(upstream)
        except StopAsyncIteration:
            first = None
        except UpstreamError as exc:
            exchange.settle(exc.usage or Usage(0, 0), "upstream_error")
            raise exchange.upstream_failure(exc) from None
        except BaseException:
            exchange.settle(exchange.abandoned(), "client_abort")
            raise
        return cls(exchange, upstream, first, wants_usage)

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._chunks

    async def aclose(self) -> None:
        """Stop early: settles what was streamed so far (a no-op after the end)."""
        await self._chunks.aclose()

    def abandon(self) -> None:
        """The caller left before reading anything: bill the prompt (a no-op once settled)."""
        self._exchange.settle(self._exchange.abandoned(), "client_abort")

    @property
    def charged_micros(self) -> int:
        """What the settlement debits, once the stream has ended (0 before)."""
        return self._exchange.charged_micros()

    async def _relay(
        self,
        upstream: AsyncIterator[dict[str, Any]],
        first: dict[str, Any] | None,
        wants_usage: bool,
    ) -> AsyncGenerator[dict[str, Any], None]:
        exchange = self._exchange
        model_id = exchange.metered.model.id
        vault = exchange.prepared.vault
        restorers = StreamRestorers(vault) if vault is not None else None
        streamed: list[str] = []
        reported: Any = None
        outcome = "client_abort"
        template: dict[str, Any] = {}
        try:
            chunk = first
            while chunk is not None:
                if chunk.get("usage") is not None:
                    reported = chunk["usage"]
                    if not wants_usage:
                        chunk = {k: v for k, v in chunk.items() if k != "usage"}
                for choice in chunk.get("choices") or []:
                    streamed.append(str((choice.get("delta") or {}).get("content") or ""))
                if chunk.get("choices") or "usage" in chunk:
                    chunk["model"] = model_id
                    template = {
                        k: v for k, v in chunk.items() if k in ("id", "object", "created", "model")
                    }
                    if restorers is not None:
                        restorers.chunk(chunk)
                    yield chunk
                chunk = await anext(upstream, None)
            if restorers is not None:  # text held back at the very end (no finish_reason seen)
                for index, text in restorers.leftovers().items():
                    yield {
                        **template,
                        "choices": [
                            {"index": index, "delta": {"content": text}, "finish_reason": None}
                        ],
                    }
            outcome = "ok"
        except UpstreamError as exc:
            outcome = "upstream_error"
            raise exchange.upstream_failure(exc) from None
        finally:
            text = "".join(streamed)
            if outcome == "ok" or reported is not None:
                spent = _usage(reported, exchange.prompt_tokens, text)
            else:  # the upstream was called: the prompt is billed, and what was streamed
                spent = exchange.abandoned(text)
            exchange.settle(spent, outcome)
            closing = getattr(upstream, "aclose", None)
            if closing is not None:
                with contextlib.suppress(BaseException):
                    await closing()
