"""The public checkpoint feed (unauthenticated, cacheable): signed tree heads, and RFC 6962
consistency proofs between them, so an outsider can hold the log to what it said before
(audit/feed.py, docs/audit.md)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api.context import platform_of
from audit.feed import public_consistency, public_heads

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("/checkpoints")
async def checkpoints(
    request: Request,
    after: int = Query(default=0, ge=0, description="tree size to list after"),
    limit: int = Query(default=100, ge=1, le=1000),
) -> JSONResponse:
    """Signed tree heads (tree size, root, last event id, time, signer, EIP-191 signature)."""
    page: dict[str, Any] = await public_heads(platform_of(request).settings, after, limit)
    return JSONResponse(page, headers={"Cache-Control": "public, max-age=10"})


@router.get("/consistency")
async def consistency_proof(
    request: Request,
    first: int = Query(ge=1, description="the earlier head's tree size"),
    second: int = Query(ge=1, description="the later head's tree size"),
) -> JSONResponse:
    """PROOF(first, second): the later head's tree extends the earlier one's."""
    proof = await public_consistency(platform_of(request).settings, first, second)
    return JSONResponse(proof, headers={"Cache-Control": "public, max-age=86400"})
