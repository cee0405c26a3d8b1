"""How the gateway talks to model servers: any OpenAI-compatible HTTP server, or the built-in echo.

Every failure surfaces as one `UpstreamError`, so the request path has a single place to turn
upstream trouble into a client status and a settlement. Nothing here retries a chat completion
that reached the upstream: it may already have been billed there (see OpenAICompatibleUpstream).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import re
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from domain.catalog import BUILTIN_PREFIX, Catalog, ModelSpec, UpstreamSpec
from domain.errors import ErrorKind, PryvError
from domain.json_codec import json_bytes, parse_json
from domain.pricing import Usage
from domain.tokens import estimate_prompt_tokens
from infra.settings import environment_secret

logger = logging.getLogger(__name__)

ECHO_UPSTREAM = f"{BUILTIN_PREFIX}echo"
ECHO_ERROR_MARKER = "[[echo:error]]"
_MAX_ERROR_BODY_BYTES = 64 * 1024  # an error body is read only this far, to find its message
_MAX_MESSAGE_CHARS = 500  # upstream error texts are cut to this before they travel further
_DRAIN_SECONDS = 1.0  # how long to wait for the end of a body after [DONE]


class UpstreamError(PryvError):
    """An upstream call failed. `status` is the upstream's HTTP status, or the `code` of an
    in-band error event; None when there is neither (timeout, unreachable, cut-off stream).
    `retryable` says whether the *client* may try again later (429/5xx/network); the gateway
    itself never resends. `usage` is set only when the upstream reported usage along with the
    error (it may have charged for the prompt).
    Messages never contain API keys, URLs or request bodies."""

    kind, code = ErrorKind.UPSTREAM, "upstream_error"

    def __init__(
        self,
        status: int | None,
        message: str,
        *,
        retryable: bool,
        usage: Usage | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retryable = retryable
        self.usage = usage

    def __repr__(self) -> str:
        return (
            f"UpstreamError(status={self.status!r}, message={self.message!r}, "
            f"retryable={self.retryable!r}, usage={self.usage!r})"
        )


class ChatUpstream(Protocol):
    async def complete(self, model: ModelSpec, body: dict[str, Any]) -> dict[str, Any]:
        """Send a non-streaming chat completion (`body` is final) and return the parsed JSON."""
        ...

    def stream(
        self, model: ModelSpec, body: dict[str, Any]
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Yield each SSE chunk in order, stopping at [DONE]. Close it (`aclose()`, e.g. via
        `contextlib.aclosing`) to release the upstream connection when the client goes away;
        typed as an AsyncGenerator rather than an AsyncIterator so that `aclose()` type-checks."""
        ...

    async def close(self) -> None: ...


def _retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def _usage_from(payload: Any) -> Usage | None:
    """The `usage` an upstream reported in `payload`, if it is well formed."""
    if not isinstance(payload, Mapping):
        return None
    usage = payload.get("usage")
    if not isinstance(usage, Mapping):
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens", 0)
    if isinstance(completion, bool) or not isinstance(completion, int):
        completion = 0 if completion is None else -1
    if isinstance(prompt, bool) or not isinstance(prompt, int) or prompt < 0 or completion < 0:
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def _error_message(payload: Any) -> str | None:
    """The message of an OpenAI-style error (`{"error": {"message"}}`), or of the looser shapes
    other servers use: `{"error": "..."}`, vLLM's `{"object": "error", "message"}`, `{"detail"}`.
    """
    if not isinstance(payload, Mapping):
        return None
    error = payload.get("error")
    message: Any = None
    if isinstance(error, Mapping):
        message = error.get("message")
    elif isinstance(error, str):
        message = error
    elif payload.get("object") == "error":
        message = payload.get("message")
    elif isinstance(payload.get("detail"), str):
        message = payload["detail"]
    if not isinstance(message, str) or not message.strip():
        return None
    return message.strip()[:_MAX_MESSAGE_CHARS]


def _is_error_payload(payload: Mapping[str, Any]) -> bool:
    return payload.get("error") is not None or payload.get("object") == "error"


def _error_from_payload(payload: Mapping[str, Any], status: int | None) -> UpstreamError:
    """An in-band error object (mid-stream, or in a 200 body). Its `code` is used as the status
    when it looks like an HTTP status, as vLLM and OpenRouter put one there."""
    error = payload.get("error")
    code = error.get("code") if isinstance(error, Mapping) else payload.get("code")
    if status is None and isinstance(code, int) and 400 <= code <= 599:
        status = code
    return UpstreamError(
        status,
        _error_message(payload) or "upstream reported an error",
        retryable=status is None or _retryable_status(status),
        usage=_usage_from(payload),
    )


def _transport_error(exc: BaseException) -> UpstreamError:
    """Map a client failure to a message safe to show (their texts can carry host names)."""
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return UpstreamError(None, "upstream unreachable", retryable=True)
    if isinstance(exc, TimeoutError):  # aiohttp's SocketTimeoutError is one
        return UpstreamError(None, "upstream timed out", retryable=True)
    if isinstance(
        exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientOSError
    ):
        return UpstreamError(None, "upstream closed the connection", retryable=True)
    logger.warning("upstream request failed: %s", type(exc).__name__)
    return UpstreamError(None, "upstream request failed", retryable=True)


_CLIENT_FAILURES = (aiohttp.ClientError, TimeoutError)
_CONNECT_RETRY_DELAYS = (0.0, 0.5)  # two more connection attempts, as httpcore's retries=2 did


class OpenAICompatibleUpstream:
    """One pooled HTTP client for one [upstreams.<name>] entry, on aiohttp's client.

    Why aiohttp and not httpx (used elsewhere): on the request path httpx cost 1.2 ms of CPU per
    call against 0.1 ms for aiohttp, same box, same fake upstream, 16 at a time
    (docs/benchmarks.md), and the upstream call was the largest single cost of a request.

    Only failed *connection attempts* are retried (twice): a request that reached the server is
    never sent twice, since the upstream may already have billed it. Timeouts: `timeout_seconds`
    bounds each read and the wait for a pooled connection (an inactivity limit, not a total
    deadline), and `connect_timeout_seconds` each connection attempt. The session is opened on
    first use, inside the event loop that serves requests.
    """

    def __init__(self, spec: UpstreamSpec) -> None:
        self.spec = spec
        self._url = f"{spec.base_url.rstrip('/')}/chat/completions"
        self._headers = {"User-Agent": "pryv-gateway", "Content-Type": "application/json"}
        self._credentials_missing = False
        if spec.api_key_env:
            key = environment_secret(spec.api_key_env)
            if key:
                self._headers["Authorization"] = f"Bearer {key}"
            else:
                # Fail each request with a clear, key-free message instead of refusing to start:
                # one misconfigured upstream should not take down the others.
                self._credentials_missing = True
                logger.error("upstream %s: env var %s is not set", spec.name, spec.api_key_env)
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError(f"the client of upstream {self.spec.name} is closed")
        if self._session is None:
            spec = self.spec
            self._session = aiohttp.ClientSession(
                # Idle connections are dropped after 4 s, before servers with the common 5 s
                # keep-alive (uvicorn's, Node's) close them under a request being sent.
                connector=aiohttp.TCPConnector(
                    limit=spec.max_connections, limit_per_host=0, keepalive_timeout=4.0
                ),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=spec.timeout_seconds + spec.connect_timeout_seconds,
                    sock_connect=spec.connect_timeout_seconds,
                    sock_read=spec.timeout_seconds,
                ),
                headers=self._headers,
                trust_env=False,
            )
        return self._session

    def _check_credentials(self) -> None:
        if self._credentials_missing:
            raise UpstreamError(None, "upstream credentials are not configured", retryable=False)

    async def _post(self, body: dict[str, Any]) -> aiohttp.ClientResponse:
        """Send the request; one the server cannot have received is tried again, nothing else."""
        data = json_bytes(body)
        session = self._client()
        for delay in _CONNECT_RETRY_DELAYS:
            try:
                return await session.post(self._url, data=data)
            except (aiohttp.ClientConnectorError, aiohttp.ClientConnectionResetError) as exc:
                # Never connected, or a pooled connection the server had just closed refused
                # the write ("Cannot write to closing transport"): in both cases the server got
                # no complete request, so sending it again cannot bill it twice.
                logger.debug("upstream %s: %s; trying again", self.spec.name, type(exc).__name__)
                await asyncio.sleep(delay)
        return await session.post(self._url, data=data)

    async def complete(self, model: ModelSpec, body: dict[str, Any]) -> dict[str, Any]:
        self._check_credentials()
        try:
            async with await self._post(body) as response:
                status = response.status
                if status >= 300:
                    raise _status_error(status, await _read_bounded(response))
                content = await response.read()
        except _CLIENT_FAILURES as exc:
            raise _transport_error(exc) from None
        try:
            payload = parse_json(content)
        except ValueError:
            raise UpstreamError(status, "upstream sent invalid JSON", retryable=False) from None
        if not isinstance(payload, dict):
            raise UpstreamError(status, "upstream sent an unexpected response", retryable=False)
        if _is_error_payload(payload) and "choices" not in payload:
            raise _error_from_payload(payload, None)
        return payload

    async def stream(
        self, model: ModelSpec, body: dict[str, Any]
    ) -> AsyncGenerator[dict[str, Any], None]:
        # An async generator: `aclose()` (or garbage collection) raises GeneratorExit at the
        # current `yield`, which leaves `async with response`: a response not read to its end
        # closes its connection (it cannot be reused), so the upstream sees the disconnect and
        # can stop generating.
        self._check_credentials()
        try:
            async with await self._post(body) as response:
                if response.status >= 300:
                    raise _status_error(response.status, await _read_bounded(response))
                if response.content_type == "application/json":
                    # Some servers answer an error (or ignore `stream`) with a plain JSON body.
                    raise _non_stream_body(response.status, await _read_bounded(response))
                async with contextlib.aclosing(_sse_json(_lines(response))) as events:
                    async for chunk in events:
                        yield chunk
        except _CLIENT_FAILURES as exc:
            raise _transport_error(exc) from None

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            await self._session.close()


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    """Read at most _MAX_ERROR_BODY_BYTES of a body (enough to find an error message)."""
    data = bytearray()
    async for part in response.content.iter_any():
        data += part
        if len(data) >= _MAX_ERROR_BODY_BYTES:
            break
    return bytes(data[:_MAX_ERROR_BODY_BYTES])


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


async def _lines(response: aiohttp.ClientResponse) -> AsyncGenerator[str, None]:
    """The body's lines, split at LF, CRLF or a lone CR as the SSE spec allows. By hand because
    aiohttp's own line reader splits only at LF and refuses lines over 64 KiB."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    async for part in response.content.iter_any():
        pending += decoder.decode(part)
        # A CR at the very end may be the first half of a CRLF: keep it for the next part.
        cut = len(pending) - 1 if pending.endswith("\r") else len(pending)
        *complete, rest = _LINE_BREAK.split(pending[:cut])
        pending = rest + pending[cut:]
        for line in complete:
            yield line
    pending += decoder.decode(b"", final=True)
    if pending:
        for line in _LINE_BREAK.split(pending.removesuffix("\r")):
            yield line


def _status_error(status: int, content: bytes) -> UpstreamError:
    try:
        payload: Any = parse_json(content)
    except ValueError:
        payload = None
    return UpstreamError(
        status,
        _error_message(payload) or f"upstream returned HTTP {status}",
        retryable=_retryable_status(status),
        usage=_usage_from(payload),
    )


def _non_stream_body(status: int, content: bytes) -> UpstreamError:
    try:
        payload: Any = parse_json(content)
    except ValueError:
        payload = None
    if isinstance(payload, Mapping) and _is_error_payload(payload):
        return _error_from_payload(payload, None)
    return UpstreamError(status, "upstream did not stream its answer", retryable=False)


# SSE is parsed by hand: the chat-completions stream uses only `data:` lines and blank-line
# event boundaries, which is ten lines of code and not worth an httpx-sse dependency.
async def _sse_json(lines: AsyncGenerator[str, None]) -> AsyncGenerator[dict[str, Any], None]:
    """Yield each event's `data` as a JSON object, until `[DONE]`. Multi-line data is joined with
    newlines (per the SSE spec); comments (`:`) and other fields (event, id, retry) are ignored."""
    data_lines: list[str] = []
    saw_finish = False
    async with contextlib.aclosing(lines):
        while True:
            line = await anext(lines, None)
            if line:
                if line.startswith("data:"):
                    value = line[5:]
                    data_lines.append(value[1:] if value.startswith(" ") else value)
                continue
            if data_lines:  # a blank line (or the end of the body) ends an event
                data = "\n".join(data_lines)
                data_lines = []
                if data.strip() == "[DONE]":
                    await _drain(lines)
                    return
                chunk = _parse_chunk(data)
                if not saw_finish:
                    saw_finish = any(
                        isinstance(c, Mapping) and c.get("finish_reason")
                        for c in chunk.get("choices") or ()
                    )
                yield chunk
            if line is None:
                break
    if not saw_finish:
        # Ended without [DONE] and before any choice finished: the answer was cut off. (Servers
        # that omit [DONE] but finish properly are tolerated.)
        raise UpstreamError(None, "upstream stream ended unexpectedly", retryable=True)


async def _drain(lines: AsyncIterator[str]) -> None:
    """Read the body's end after [DONE] (normally just the chunked-encoding terminator): only a
    fully read HTTP/1.1 response gives its connection back to the pool for the next request."""
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _ in lines:
                pass
    except _CLIENT_FAILURES:
        pass  # the answer is complete; the connection is just not reused


def _parse_chunk(data: str) -> dict[str, Any]:
    try:
        chunk = parse_json(data)
    except ValueError:
        raise UpstreamError(
            None, "upstream sent a malformed stream event", retryable=False
        ) from None
    if not isinstance(chunk, dict):
        raise UpstreamError(None, "upstream sent a malformed stream event", retryable=False)
    if _is_error_payload(chunk):
        raise _error_from_payload(chunk, None)
    return chunk


def _message_text(content: Any) -> str:
    """A message's text: the string itself, or a multimodal message's text parts joined by ' '."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


class EchoUpstream:
    """The built-in `builtin:echo` model: repeats the last user message, one token per word.

    Deterministic and offline so tests and local development can exercise the full billing path:
    `prompt_tokens` is exactly the gateway's own estimate, so a test can predict every charge.
    A message containing `[[echo:error]]` makes it fail like a broken upstream.
    """

    def _answer(self, model: ModelSpec, body: Mapping[str, Any]) -> tuple[list[str], bool, int]:
        messages = body.get("messages") or []
        if any(
            isinstance(m, Mapping) and ECHO_ERROR_MARKER in _message_text(m.get("content"))
            for m in messages
        ):
            raise UpstreamError(500, "echo: simulated upstream failure", retryable=True)
        text = ""
        for message in reversed(messages):
            if isinstance(message, Mapping) and message.get("role") == "user":
                text = _message_text(message.get("content"))
                break
        limit = (
            body.get("max_tokens") or body.get("max_completion_tokens") or model.max_output_tokens
        )
        limit = max(int(limit), 1)
        words = text.split() or ["(empty)"]
        truncated = len(words) > limit
        return words[:limit], truncated, estimate_prompt_tokens(messages)

    async def complete(self, model: ModelSpec, body: dict[str, Any]) -> dict[str, Any]:
        words, truncated, prompt_tokens = self._answer(model, body)
        return {
            "id": f"chatcmpl-echo-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", model.upstream_model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(words)},
                    "finish_reason": "length" if truncated else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(words),
                "total_tokens": prompt_tokens + len(words),
            },
        }

    async def stream(
        self, model: ModelSpec, body: dict[str, Any]
    ) -> AsyncGenerator[dict[str, Any], None]:
        words, truncated, prompt_tokens = self._answer(model, body)
        base = {
            "id": f"chatcmpl-echo-{uuid.uuid4().hex}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model", model.upstream_model),
        }

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return {**base, "choices": [choice]}

        yield chunk({"role": "assistant", "content": ""})
        delay = model.stream_delay_ms / 1000
        for i, word in enumerate(words):
            if delay > 0:
                await asyncio.sleep(delay)
            yield chunk({"content": word if i == 0 else f" {word}"})
        yield chunk({}, "length" if truncated else "stop")
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(words),
                "total_tokens": prompt_tokens + len(words),
            }
            yield {**base, "choices": [], "usage": usage}

    async def close(self) -> None:
        return None


@dataclass
class UpstreamStats:
    """Calls per (model, outcome) and their seconds (to the answer, or to a stream's first
    chunk), counted where the call is made and read by the metrics endpoint at scrape time."""

    calls: dict[tuple[str, str], int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def record(self, model: str, outcome: str, elapsed: float | None) -> None:
        self.calls[(model, outcome)] = self.calls.get((model, outcome), 0) + 1
        if elapsed is not None:
            self.seconds[model] = self.seconds.get(model, 0.0) + elapsed


class MeteredUpstream:
    """A ChatUpstream that counts each call's outcome (`ok`, `error`) and latency."""

    def __init__(self, inner: ChatUpstream, stats: UpstreamStats) -> None:
        self._inner = inner
        self._stats = stats

    @property
    def inner(self) -> ChatUpstream:
        """The upstream client this counts the calls of (one per upstream server)."""
        return self._inner

    def _failed(self, model: ModelSpec, error: UpstreamError, seconds: float | None) -> None:
        """Count it and say so in the log (the access line alone shows only a 502)."""
        self._stats.record(model.id, "error", seconds)
        logger.warning(
            "upstream call failed",
            extra={
                "pryv": {
                    "model": model.id,
                    "upstream": model.upstream,
                    "upstream_status": error.status,
                    "retryable": error.retryable,
                    "error": error.message[:200],  # never keys, URLs or bodies (UpstreamError)
                }
            },
        )

    async def complete(self, model: ModelSpec, body: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            answer = await self._inner.complete(model, body)
        except UpstreamError as error:
            self._failed(model, error, time.perf_counter() - started)
            raise
        self._stats.record(model.id, "ok", time.perf_counter() - started)
        return answer

    async def stream(
        self, model: ModelSpec, body: dict[str, Any]
    ) -> AsyncGenerator[dict[str, Any], None]:
        started, first = time.perf_counter(), True
        inner = self._inner.stream(model, body)
        try:
            async for chunk in inner:
                if first:
                    first = False
                    self._stats.record(model.id, "ok", time.perf_counter() - started)
                yield chunk
        except UpstreamError as error:
            self._failed(model, error, None if not first else time.perf_counter() - started)
            raise
        finally:
            await inner.aclose()

    async def close(self) -> None:
        await self._inner.close()


class UpstreamRouter:
    """Picks the upstream for a model; one shared, lazily created client per upstream name, so
    every request to that server shares one connection pool. Every call is counted in
    `stats` (metrics)."""

    def __init__(
        self,
        catalog: Catalog,
    ) -> None:
        self._catalog = catalog
        self._echo = EchoUpstream()
        self._clients: dict[str, OpenAICompatibleUpstream] = {}
        self.stats = UpstreamStats()
        self._metered: dict[int, MeteredUpstream] = {}

    def for_model(self, model: ModelSpec) -> MeteredUpstream:
        """The model's upstream, counted; the same object for every model of one server."""
        inner = self._for_model(model)
        metered = self._metered.get(id(inner))
        if metered is None:
            metered = self._metered[id(inner)] = MeteredUpstream(inner, self.stats)
        return metered

    def _for_model(self, model: ModelSpec) -> ChatUpstream:
        if model.builtin:
            if model.upstream != ECHO_UPSTREAM:
                raise ValueError(f"model {model.id}: unknown builtin upstream {model.upstream!r}")
            return self._echo
        client = self._clients.get(model.upstream)
        if client is None:
            spec = self._catalog.upstreams.get(model.upstream)
            if spec is None:
                raise ValueError(f"model {model.id}: unknown upstream {model.upstream!r}")
            client = OpenAICompatibleUpstream(spec)
            self._clients[spec.name] = client
        return client

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        self._metered = {}  # keyed by id(): never outlive the clients they wrap
        for client in clients:
            await client.close()
        await self._echo.close()
