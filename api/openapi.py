"""The OpenAPI document: FastAPI's, completed with what the routes do by hand.

Routes that authenticate before they parse (so a missing key is 401, not 400) read their JSON
body themselves; their request schemas are added here from the same pydantic models. Every
operation documents the OpenAI-shaped error object and the statuses Pryv actually returns
(never FastAPI's 422: validation errors are 400).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.mpp import SERVICE_INFO
from gateway.chat_request import ChatCompletionRequest
from gateway.mpp.service import BuyKeyRequest, payment_info
from gateway.preview import PiiPreviewRequest

ERROR_STATUSES = {
    "400": "Invalid request (invalid_json, validation_error, invalid_model, …)",
    "401": "Missing or invalid credentials",
    "402": "Insufficient credits or budget",
    "403": "Not allowed (model entitlement, wallet signature checks)",
    "404": "Not found",
    "405": "Method not allowed",
    "409": "Conflict (duplicate request id)",
    "429": "Rate limited (see Retry-After)",
    "500": "Internal or billing error",
    "502": "The model server failed",
    "503": "A backing service is unavailable (fail closed)",
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": ["string", "null"]},
                "param": {"type": ["string", "null"]},
            },
        }
    },
}

MANUAL_BODIES: dict[tuple[str, str], type[BaseModel]] = {
    ("/v1/chat/completions", "post"): ChatCompletionRequest,
    ("/v1/pii/preview", "post"): PiiPreviewRequest,
    ("/mpp/pii/preview", "post"): PiiPreviewRequest,
    ("/mpp/keys", "post"): BuyKeyRequest,
    ("/mpp/chat/completions", "post"): ChatCompletionRequest,
}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        refs, defs = models_json_schema(
            [(model, "validation") for model in MANUAL_BODIES.values()],
            ref_template="#/components/schemas/{model}",
        )
        components.update(defs.get("$defs", {}))
        components["Error"] = ERROR_SCHEMA
        for (path, method), model in MANUAL_BODIES.items():
            operation = schema["paths"][path][method]
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(model, "validation")]}},
            }
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for operations in schema["paths"].values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                for status, text in ERROR_STATUSES.items():
                    responses.setdefault(status, {"description": text, "content": error})
        # MPP discovery (draft-payment-discovery): the service, and each paid operation's offers.
        schema["x-service-info"] = SERVICE_INFO
        mpp = getattr(app.state, "mpp", None)
        for path, info in payment_info(mpp.platform if mpp is not None else None).items():
            schema["paths"][path]["post"]["x-payment-info"] = info
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
