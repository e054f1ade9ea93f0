"""Exception handlers: every failure leaves as the error envelope, never a bare 500 page.

Unexpected exceptions are answered by `UnexpectedErrors`, a middleware inside the app's
own error middleware: Starlette's re-raises after answering a 500, and the server then
closes the client's keep-alive connection. Here the exception ends with the response.
"""

import math
from collections.abc import Mapping
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmsafespace.contracts import ErrorCode, ServiceError
from llmsafespace.servicekit import database_unavailable
from llmsafespace.servicekit.bus import ERRORS

log = structlog.get_logger()

_HTTP_CODES = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
}


def error_response(error: ServiceError, status: int | None = None) -> JSONResponse:
    """The envelope; a `rate_limited` one, whichever service refused, with `Retry-After`
    (its `details.retryAfter`, whole seconds)."""
    ERRORS.labels(code=error.code.value).inc()
    response = JSONResponse(
        error.envelope().model_dump(mode="json", exclude_none=True),
        status_code=status or error.http_status,
    )
    wait = (error.details or {}).get("retryAfter")
    if error.code is ErrorCode.RATE_LIMITED and isinstance(wait, int | float):
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


async def service_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ServiceError)
    return error_response(exc)


async def http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, ErrorCode.INTERNAL_ERROR)
    response = error_response(ServiceError(code, str(exc.detail)), exc.status_code)
    response.headers.update(exc.headers or {})  # a 405's Allow
    return response


def unexpected_error(exc: Exception) -> JSONResponse:
    if database_unavailable(exc):
        log.warning("database_unavailable", error=str(exc))
        return error_response(ServiceError(ErrorCode.SERVICE_UNAVAILABLE, "database unavailable"))
    log.error("request_failed", exc_info=exc)
    return error_response(ServiceError(ErrorCode.INTERNAL_ERROR, "internal error"))


class UnexpectedErrors:
    """Pure ASGI middleware: any other exception becomes the `internal_error` envelope
    (or `service_unavailable` for a database outage), and the connection stays usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:
            if started:  # too late for an envelope: the server ends the response
                raise
            await unexpected_error(exc)(scope, receive, send)


EXCEPTION_HANDLERS: Mapping[Any, Any] = {
    ServiceError: service_error,
    HTTPException: http_error,
}
