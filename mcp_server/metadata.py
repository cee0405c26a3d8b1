"""Discovery documents, served by Pryv rather than the SDK where the SDK says less than the
specs ask: RFC 8414 metadata that also lists public clients (`none`, as Claude, ChatGPT and
Codex register) and RFC 9207's `iss` parameter; RFC 9728 protected-resource metadata with the
scopes, at the resource's path and at the root fallback; and the product docs the `search` and
`fetch` tools cite."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from mcp.server.auth.routes import build_metadata
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl

from domain.errors import ErrorKind, PryvError
from mcp_server.authorization import SCOPES
from mcp_server.tools import DOCS

router = APIRouter(include_in_schema=False)
PUBLIC = {"Access-Control-Allow-Origin": "*", "Cache-Control": "public, max-age=3600"}
AUTH_METHODS = ["none", "client_secret_post", "client_secret_basic"]


def authorization_server_metadata(issuer: str) -> dict[str, Any]:
    metadata = build_metadata(
        AnyHttpUrl(issuer),
        None,
        ClientRegistrationOptions(enabled=True, valid_scopes=list(SCOPES)),
        RevocationOptions(enabled=True),
    )
    doc: dict[str, Any] = metadata.model_dump(mode="json", exclude_none=True)
    doc["token_endpoint_auth_methods_supported"] = AUTH_METHODS
    doc["revocation_endpoint_auth_methods_supported"] = AUTH_METHODS
    doc["authorization_response_iss_parameter_supported"] = True
    doc["client_id_metadata_document_supported"] = True
    return doc


def protected_resource_metadata(resource: str, issuer: str) -> dict[str, Any]:
    return {
        "resource": resource,
        "authorization_servers": [issuer],
        "scopes_supported": list(SCOPES),
        "bearer_methods_supported": ["header"],
        "resource_name": "Pryv",
    }


@router.get("/.well-known/oauth-authorization-server")
async def authorization_server(request: Request) -> JSONResponse:
    return JSONResponse(authorization_server_metadata(request.app.state.mcp.issuer), headers=PUBLIC)


@router.get("/.well-known/oauth-protected-resource/mcp")
@router.get("/.well-known/oauth-protected-resource")
async def protected_resource(request: Request) -> JSONResponse:
    """RFC 9728 §3.1 at the resource's own path, and at the root for clients that look there."""
    door = request.app.state.mcp
    return JSONResponse(protected_resource_metadata(door.resource, door.issuer), headers=PUBLIC)


@router.get("/mcp/docs/{name}.md", response_class=PlainTextResponse)
async def doc_page(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9-]{1,64}", name) or not (DOCS / f"{name}.md").is_file():
        raise PryvError(f"no document {name!r}", code="not_found", kind=ErrorKind.NOT_FOUND)
    return (DOCS / f"{name}.md").read_text(encoding="utf-8")
