"""POST /v1/pii/preview: what Pryv would remove, and the result (gateway.preview holds the
rules and the metering)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.bearer import authenticate_key
from api.context import preview_service_of
from api.errors import ApiError
from gateway.preview import PiiPreviewRequest

router = APIRouter(prefix="/v1", tags=["privacy"])


@router.post("/pii/preview", response_model=None)
async def pii_preview(request: Request) -> JSONResponse:
    """Entities found (type, span, score) and the redacted text / image / PDF / page."""
    identity = await authenticate_key(request)
    try:
        body = PiiPreviewRequest.model_validate(await request.json())
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(400, "validation_error", str(first["msg"]), param=param) from exc
    except ValueError as exc:
        raise ApiError(400, "invalid_json", "request body is not valid JSON") from exc
    request_id = request.headers.get("x-request-id") or f"req_{uuid.uuid4().hex}"
    result = await preview_service_of(request).preview(identity, body, request_id)
    return JSONResponse(result.body, headers=result.metadata)
