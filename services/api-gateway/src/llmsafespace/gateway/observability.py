"""Request ids and request metrics for every HTTP request and WebSocket.

A request id comes from the client's `X-Request-Id` (if sane) or is made here; it is
bound to the log context, sent back in the response, and travels with every bus
request (the services log it too). Metric names and labels are the original design's
(`endpoint` is the route template, never an id; `type` is `http` or `websocket`).

The status logged and counted is what the client got: the response's; 101 for a
WebSocket that was accepted, the refusal's status for one that was not (403 for a bare
close before the upgrade); 499 (as nginx counts it) for a request whose client went away
before any response; else 500. Latency and size histograms are for HTTP requests only.
"""

import asyncio
import re
import time
import uuid

import structlog
from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
log = structlog.get_logger()
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SWITCHING_PROTOCOLS = 101
REFUSED_UPGRADE = 403
CLIENT_CLOSED_REQUEST = 499
_CLIENT_LEFT = ("http.disconnect", "websocket.disconnect")

REQUESTS = Counter("api_requests", "HTTP requests and WebSockets", ["method", "endpoint", "status"])
DURATION = Histogram(
    "api_request_duration_seconds", "HTTP request duration", ["method", "endpoint"]
)
RESPONSE_SIZE = Histogram(
    "api_response_size_bytes",
    "HTTP response body size",
    ["method", "endpoint"],
    buckets=(100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000),
)
ACTIVE = Gauge("api_active_connections", "Open HTTP requests and WebSockets", ["type"])


def route_template(scope: Scope) -> str:
    """`/api/v1/sandboxes/{sandbox_id}` rather than the concrete path (routing records
    the matched route in the scope); `unmatched` when no route matched."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    return "unmatched" if template is None else scope.get("root_path", "") + template


class Observability:
    """Pure ASGI middleware (it does not buffer streamed responses)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        offered = headers.get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        request_id = offered if _SANE_ID.fullmatch(offered) else uuid.uuid4().hex
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status: int | None = None
        client_left = False
        size = 0
        started = time.perf_counter()

        async def observed_receive() -> Message:
            nonlocal client_left
            message = await receive()
            if message["type"] in _CLIENT_LEFT:
                client_left = True
            return message

        async def observed_send(message: Message) -> None:
            nonlocal status, size
            kind = message["type"]
            if kind in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            elif kind == "http.response.body":
                size += len(message.get("body", b""))
            elif kind == "websocket.accept":
                status = SWITCHING_PROTOCOLS
            elif kind == "websocket.close" and status is None:
                status = REFUSED_UPGRADE  # what the server answers a close before accept
            await send(message)

        kind = scope["type"]
        ACTIVE.labels(type=kind).inc()
        abandoned = False
        try:
            await self.app(scope, observed_receive, observed_send)
        except asyncio.CancelledError:
            abandoned = True
            raise
        finally:
            ACTIVE.labels(type=kind).dec()
            if status is None:
                status = CLIENT_CLOSED_REQUEST if client_left or abandoned else 500
            route = route_template(scope)
            elapsed = time.perf_counter() - started
            method = scope.get("method", "GET")
            REQUESTS.labels(method=method, endpoint=route, status=str(status)).inc()
            if kind == "http":
                DURATION.labels(method=method, endpoint=route).observe(elapsed)
                RESPONSE_SIZE.labels(method=method, endpoint=route).observe(size)
            log.info(
                "request",
                kind=kind,
                method=method,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("request_id")
