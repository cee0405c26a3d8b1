"""Request bodies are bounded before any route sees them: size, JSON nesting depth, well-formedness.

A JSON body nested 100,000 levels deep is 200 KB, and parsing it recursively overflows the C
stack (a segfault, every in-flight stream lost), so the check cannot be left to the routes.
Plain ASGI middleware in front of every app (API and dashboard): it reads the body once,
refuses oversize bodies with 413 and too-deep or malformed JSON with 400 (OpenAI's error shape),
and replays the body to the app. The depth check is pydantic-core's JSON parser (Rust, no
recursion on the Python stack, depth capped at `MAX_JSON_DEPTH`); the parsed document is kept
in `scope["state"]` so routes that read JSON by hand do not parse it twice.

A client that hangs up while its body is still arriving gets no answer (there is nobody to
answer) and nothing reaches the app.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import pydantic_core

from api.errors import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_JSON_DEPTH = 200  # pydantic-core's parser refuses anything deeper (its recursion limit)
PARSED_JSON = "pryv.parsed_json"  # key in scope["state"]: the body parsed by this middleware
NOT_PARSED = object()  # what `parsed_json` returns for a body that was not JSON


MIB = 1 << 20


@dataclass(frozen=True)
class BodyLimits:
    """Largest body accepted: `large_bytes` on `large_paths` (chat with images and PDFs, the
    preview), `default_bytes` everywhere else (management, webhooks, dashboard)."""

    default_bytes: int = MIB
    large_bytes: int = 32 * MIB  # OpenAI's own cap for file content in one request
    large_paths: tuple[str, ...] = ("/v1/",)

    def for_path(self, path: str) -> int:
        return self.large_bytes if path.startswith(self.large_paths) else self.default_bytes


def parsed_json(scope: Scope) -> Any:
    """The body as parsed by `BodyLimitMiddleware`, or `NOT_PARSED` when it was not JSON."""
    state = scope.get("state") or {}
    return state.get(PARSED_JSON, NOT_PARSED)


class _ClientGone(Exception):
    """The client disconnected before its body was complete."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limits: BodyLimits | None = None) -> None:
        self.app = app
        self.limits = limits or BodyLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(str(scope.get("path", "")))
        headers = {k.lower(): v for k, v in scope.get("headers") or []}
        declared = headers.get(b"content-length", b"").strip()
        if declared and (not declared.isdigit() or len(declared) > 18 or int(declared) > limit):
            await _refuse(send, 413, "request_too_large", _too_large(limit))
            return
        try:
            body = await _read_body(receive, limit)
        except _ClientGone:
            return
        if body is None:
            await _refuse(send, 413, "request_too_large", _too_large(limit))
            return
        declared_json = _is_json(headers.get(b"content-type", b""))
        # Parsed when declared JSON, and when it looks like JSON whatever it is labelled as
        # (`curl -d` says form-urlencoded): no route ever parses an unchecked JSON body.
        if body and (declared_json or body.lstrip()[:1] in (b"{", b"[")):
            try:
                document = pydantic_core.from_json(body)
            except ValueError as exc:
                if "recursion limit" in str(exc):
                    message = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
                    await _refuse(send, 400, "json_too_deep", message)
                    return
                if declared_json:
                    message = f"request body is not valid JSON: {exc}"
                    await _refuse(send, 400, "invalid_json", message)
                    return
            else:
                scope.setdefault("state", {})[PARSED_JSON] = document
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes `limit` (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body in one message, then the real channel (streams listen on it for disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _is_json(content_type: bytes) -> bool:
    """JSON as FastAPI decides it: no content type, or application/json or any +json type."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return not media or media == b"application/json" or media.endswith(b"+json")


def _too_large(limit: int) -> str:
    return f"request body larger than {limit:,} bytes"


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    payload = json.dumps(error_body(status, code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
