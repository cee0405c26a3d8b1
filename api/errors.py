"""OpenAI-shaped errors: `{"error": {"message", "type", "code", "param"}}` with the right status.

Every failure path ends here: validation errors become 400 (not FastAPI's 422), unreachable
backing services become 503 (fail closed), anything unexpected a 500 without internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("pryv.api")

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
    503: "service_unavailable_error",
}


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}


def error_body(status: int, code: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "api_error"),
            "code": code,
            "param": param,
        }
    }


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(error.status, error.code, error.message, error.param),
        status_code=error.status,
        headers=error.headers,
    )


def _unavailable_types() -> tuple[type[Exception], ...]:
    """Exceptions that mean a backing service is down: answer 503, never serve for free."""
    import psycopg
    import redis.exceptions
    from eventsourcing.persistence import InterfaceError, OperationalError

    from infra.bus import BusUnavailable

    return (
        psycopg.OperationalError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        OperationalError,
        InterfaceError,
        BusUnavailable,
        ConnectionError,
    )


def install_error_handlers(app: FastAPI) -> None:
    unavailable = _unavailable_types()

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
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
        return JSONResponse(
            error_body(503, "service_unavailable", "a backing service is unavailable; retry"),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    # One handler per type (not a branch of the catch-all): Starlette re-raises whatever reaches
    # the catch-all after answering, which would log a traceback, count a 500 and drop the
    # connection for what is an expected, fail-closed 503.
    for exc_type in unavailable:
        app.add_exception_handler(exc_type, _unavailable)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return JSONResponse(error_body(500, "internal_error", "internal error"), status_code=500)
