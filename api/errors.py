"""OpenAI-shaped errors: `{"error": {"message", "type", "code", "param"}}` with the right status.

Every failure path ends here: a PryvError's kind picks the status, validation errors become 400
(not FastAPI's 422), unreachable backing services become 503 (infra.failures: fail closed),
anything unexpected a 500 without internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import ErrorKind, PryvError
from infra.failures import as_unavailable, backend_failures

log = logging.getLogger("pryv.api")

# Each kind of error is one HTTP status and one OpenAI error type.
KIND_STATUS: dict[ErrorKind, int] = {
    ErrorKind.INVALID_REQUEST: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.PAYMENT_REQUIRED: 402,
    ErrorKind.PERMISSION: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.METHOD_NOT_ALLOWED: 405,
    ErrorKind.CONFLICT: 409,
    ErrorKind.TOO_LARGE: 413,
    ErrorKind.UNSUPPORTED_MEDIA: 415,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.INTERNAL: 500,
    ErrorKind.UPSTREAM: 502,
    ErrorKind.UNAVAILABLE: 503,
}
STATUS_KIND = {status: kind for kind, status in KIND_STATUS.items()}

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "service_unavailable_error",
}


class ApiError(PryvError):
    """A PryvError raised by the HTTP layer itself, named by its status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            message, code=code, kind=STATUS_KIND[status], param=param, metadata=headers
        )


def status_of(error: PryvError) -> int:
    return KIND_STATUS[error.kind]


def error_object(error: PryvError) -> dict[str, Any]:
    """The OpenAI error object (`{"message", "type", "code", "param"}`) for `error`."""
    return {
        "message": error.message,
        "type": ERROR_TYPES.get(status_of(error), "api_error"),
        "code": error.code,
        "param": error.param,
    }


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "api_error"),
            "code": code,
            "param": param,
        }
    }


def error_response(error: PryvError) -> JSONResponse:
    status = status_of(error)
    return JSONResponse(
        error_body(status, error.code, error.message, error.param),
        status_code=status,
        headers=error.metadata,
    )


def install_error_handlers(app: FastAPI) -> None:

    @app.exception_handler(PryvError)
    async def _pryv_error(_request: Request, exc: PryvError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(part) for part in first.get("loc", ()) if part not in ("body", "query")]
        param = ".".join(loc) or None
        message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
        return JSONResponse(error_body(400, "validation_error", message, param), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(exc.status_code, code, str(exc.detail)), status_code=exc.status_code
        )

    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("backing service unavailable on %s: %s", request.url.path, exc)
        return error_response(as_unavailable(exc))

    # One handler per type (not a branch of the catch-all): Starlette re-raises whatever reaches
    # the catch-all after answering, which would log a traceback, count a 500 and drop the
    # connection for what is an expected, fail-closed 503.
    for exc_type in backend_failures():
        app.add_exception_handler(exc_type, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse(error_body(500, "internal_error", "internal error"), status_code=500)
