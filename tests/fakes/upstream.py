"""A fast fake OpenAI-compatible model server, for tests and for benchmarking gateway overhead.

A plain ASGI app (no framework in the hot path) served by uvicorn with uvloop + httptools, so
what a benchmark measures is the gateway, not the fake. Behaviour is picked by the requested
model name (body["model"]):

- any name: answers N words "ok1 ok2 ..." where N = max_tokens (or max_completion_tokens,
  default 8); usage = estimate_prompt_tokens(messages) prompt tokens and N completion tokens;
  streaming sends one chunk per word, and a usage chunk only if stream_options.include_usage;
- "nousage": never reports usage (no `usage` key, no usage chunk);
- "dense": reports prompt tokens at 3 bytes per token (a tokenizer denser than English: code,
  numbers, CJK), more than Pryv's central estimate;
- "bodyN" (N a digit): reports prompt tokens as the whole request body's JSON at N bytes per
  token — tools, schemas and every other field counted, as a real model bills them;
- "error500" (any "errorNNN"): HTTP NNN with {"error": {"message": "boom", ...}};
- "slow": pauses `slow_delay_seconds` (default 50 ms) before each streamed word;
- "midfail": streams 3 words, then a `data: {"error": ...}` event, and ends without [DONE].
- "echo": answers the last user message's text verbatim, streamed 3 characters at a time (so
  anything in it — a placeholder, say — arrives split across chunks).

Every request body and its headers are recorded (thread-safe) so tests can assert exactly what
reached the upstream. TCP_NODELAY: uvicorn does not set it itself; the event loop does for every
TCP transport (uvloop's TCPTransport.new calls uv_tcp_nodelay, asyncio's _set_nodelay), so small
SSE chunks are not held back by Nagle's algorithm.

Standalone, for benchmarks: `uv run python -m tests.fakes.upstream --port 9100`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import uvicorn

from domain.tokens import estimate_prompt_tokens

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_WORDS = 8
MIDFAIL_WORDS = 3
_ERROR_STATUS = re.compile(r"error(\d{3})")
_BODY_BYTES_PER_TOKEN = re.compile(r"body(\d)")
_JSON_HEADERS = [(b"content-type", b"application/json")]
_SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
_MODELS = json.dumps(
    {
        "object": "list",
        "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}],
    }
).encode()


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
            return str(content or "")
    return ""


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class FakeUpstream:
    """The ASGI app plus what it saw. `url` is set once it is served (ends in /v1)."""

    def __init__(self, *, slow_delay_seconds: float = 0.05, record: bool = True) -> None:
        self.url = ""
        self.slow_delay_seconds = slow_delay_seconds
        self.record = record  # off for long benchmarks, so memory stays flat
        self._lock = threading.Lock()
        self._received: list[dict[str, Any]] = []
        self._received_headers: list[dict[str, str]] = []
        self._clients: list[tuple[str, int]] = []
        self._request_count = 0
        self._cancelled_streams = 0
        self._completed_streams = 0

    # --- what the fake saw -------------------------------------------------------------------

    @property
    def received(self) -> list[dict[str, Any]]:
        """Every chat-completions body received, in arrival order (a copy)."""
        with self._lock:
            return list(self._received)

    @property
    def received_headers(self) -> list[dict[str, str]]:
        """Headers (lower-cased names) of each chat-completions request, parallel to `received`."""
        with self._lock:
            return list(self._received_headers)

    @property
    def client_addresses(self) -> list[tuple[str, int]]:
        """The peer (host, port) of each chat-completions request: equal ports = reused conn."""
        with self._lock:
            return list(self._clients)

    @property
    def request_count(self) -> int:
        """All HTTP requests, any path."""
        with self._lock:
            return self._request_count

    @property
    def cancelled_streams(self) -> int:
        """Streams the client went away from before they finished (noticed between chunks)."""
        with self._lock:
            return self._cancelled_streams

    @property
    def completed_streams(self) -> int:
        with self._lock:
            return self._completed_streams

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self._received_headers.clear()
            self._clients.clear()
            self._request_count = 0
            self._cancelled_streams = 0
            self._completed_streams = 0

    # --- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # lifespan is turned off; websockets are not served
        with self._lock:
            self._request_count += 1
        path, method = scope["path"], scope["method"]
        if path == "/v1/models" and method == "GET":
            await _respond(send, 200, _MODELS)
            return
        if path != "/v1/chat/completions" or method != "POST":
            await _respond(send, 404, b'{"error":{"message":"not found","type":"not_found"}}')
            return
        raw = bytearray()
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError:
            await _respond(
                send, 400, b'{"error":{"message":"invalid JSON","type":"invalid_request_error"}}'
            )
            return
        if self.record:
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            client = scope.get("client")
            with self._lock:
                self._received.append(body)
                self._received_headers.append(headers)
                self._clients.append((str(client[0]), int(client[1])) if client else ("", 0))

        model = str(body.get("model", ""))
        error = _ERROR_STATUS.search(model)
        if error:
            status = int(error.group(1))
            payload = {"error": {"message": "boom", "type": "server_error", "code": None}}
            await _respond(send, status, json.dumps(payload).encode())
            return
        n = int(body.get("max_tokens") or body.get("max_completion_tokens") or DEFAULT_WORDS)
        words = [f"ok{i}" for i in range(1, max(n, 1) + 1)]
        messages = body.get("messages") or []
        echo = "echo" in model
        if echo:
            text = _last_user_text(messages)
            words = [text[i : i + 3] for i in range(0, len(text), 3)] or [""]
        usage = None
        if "nousage" not in model:
            prompt = estimate_prompt_tokens(messages, bytes_per_token=3 if "dense" in model else 4)
            body_bytes = _BODY_BYTES_PER_TOKEN.search(model)
            if body_bytes:  # a tokenizer that reads everything sent, not only the messages
                sent = {k: v for k, v in body.items() if k not in ("model", "max_tokens")}
                prompt = -(-len(json.dumps(sent).encode()) // int(body_bytes.group(1)))
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": len(words),
                "total_tokens": prompt + len(words),
            }
        if body.get("stream"):
            await self._stream(body, model, words, usage, receive, send)
            return
        answer: dict[str, Any] = {
            "id": f"chatcmpl-fake-{time.monotonic_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(words) if echo else " ".join(words),
                    },
                    "finish_reason": "length",
                }
            ],
        }
        if usage is not None:
            answer["usage"] = usage
        await _respond(send, 200, json.dumps(answer, separators=(",", ":")).encode())

    async def _stream(
        self,
        body: dict[str, Any],
        model: str,
        words: list[str],
        usage: dict[str, int] | None,
        receive: Receive,
        send: Send,
    ) -> None:
        base = {
            "id": f"chatcmpl-fake-{time.monotonic_ns()}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return _sse(
                {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            )

        slow = self.slow_delay_seconds if "slow" in model else 0.0
        midfail = "midfail" in model
        # The request body is fully read, so the next receive() returns only on disconnect (or
        # once the response is complete); a watcher task turns that into a flag.
        disconnect = asyncio.ensure_future(receive())
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            await send(
                {
                    "type": "http.response.body",
                    "body": chunk({"role": "assistant", "content": ""}),
                    "more_body": True,
                }
            )
            for i, word in enumerate(words):
                if midfail and i == MIDFAIL_WORDS:
                    error = {"error": {"message": "mid-stream failure", "type": "server_error"}}
                    await send({"type": "http.response.body", "body": _sse(error)})
                    return
                if slow:
                    await asyncio.sleep(slow)
                if disconnect.done():
                    with self._lock:
                        self._cancelled_streams += 1
                    return
                content = word if i == 0 or "echo" in model else f" {word}"
                await send(
                    {
                        "type": "http.response.body",
                        "body": chunk({"content": content}),
                        "more_body": True,
                    }
                )
            tail = chunk({}, "length")
            if usage is not None and (body.get("stream_options") or {}).get("include_usage"):
                tail += _sse({**base, "choices": [], "usage": usage})
            tail += b"data: [DONE]\n\n"
            with self._lock:
                self._completed_streams += 1
            await send({"type": "http.response.body", "body": tail})
        finally:
            disconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await disconnect


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": _JSON_HEADERS})
    await send({"type": "http.response.body", "body": body})


def _config(app: FakeUpstream, **kwargs: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        **kwargs,
    )


@contextlib.contextmanager
def running_fake_upstream(
    port: int = 0, *, slow_delay_seconds: float = 0.05, record: bool = True
) -> Iterator[FakeUpstream]:
    """Serve a FakeUpstream on 127.0.0.1 (a free port when 0) from a background thread."""
    fake = FakeUpstream(slow_delay_seconds=slow_delay_seconds, record=record)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(_config(fake))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="fake-upstream", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.005)
        with socket.create_connection(("127.0.0.1", bound_port), timeout=2):
            pass
        fake.url = f"http://127.0.0.1:{bound_port}/v1"
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible upstream.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--slow-delay-ms", type=float, default=50.0)
    parser.add_argument(
        "--record", action="store_true", help="keep every request body (memory grows)"
    )
    args = parser.parse_args()
    fake = FakeUpstream(slow_delay_seconds=args.slow_delay_ms / 1000, record=args.record)
    fake.url = f"http://{args.host}:{args.port}/v1"
    print(f"fake upstream on {fake.url}", flush=True)
    uvicorn.Server(_config(fake, host=args.host, port=args.port)).run()


if __name__ == "__main__":
    main()
