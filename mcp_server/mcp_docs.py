"""The product docs the `search` and `fetch` tools cite, served as they are (Markdown), plus
RFC 9728's root fallback for clients that look there for the protected-resource metadata."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from domain.errors import ErrorKind, PryvError
from mcp_server.authorization import SCOPES
from mcp_server.tools import DOCS

router = APIRouter(include_in_schema=False)


@router.get("/mcp/docs/{name}.md", response_class=PlainTextResponse)
async def doc_page(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9-]{1,64}", name) or not (DOCS / f"{name}.md").is_file():
        raise PryvError(f"no document {name!r}", code="not_found", kind=ErrorKind.NOT_FOUND)
    return (DOCS / f"{name}.md").read_text(encoding="utf-8")


@router.get("/.well-known/oauth-protected-resource")
async def protected_resource_root(request: Request) -> dict[str, Any]:
    """The same document as /.well-known/oauth-protected-resource/mcp (RFC 9728 §3.1)."""
    door = request.app.state.mcp
    base = door.resource.removesuffix("/mcp")
    return {
        "resource": door.resource,
        "authorization_servers": [f"{base}/"],
        "scopes_supported": list(SCOPES),
        "bearer_methods_supported": ["header"],
    }
