"""The HTTP face every service has: /health, /ready, /metrics; and how it is served."""

from collections.abc import Awaitable, Callable

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


def operational_routes(readiness: ReadinessCheck) -> list[BaseRoute]:
    """`/health`: the process answers. `/ready`: every dependency answers (503 otherwise)."""

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(_: Request) -> Response:
        checks = await readiness()
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "checks": checks},
            status_code=200 if ok else 503,
        )

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


WS_MAX_BYTES = 1024 * 1024  # a larger WebSocket message closes the socket with 1009


def serve(app: Starlette, host: str, port: int) -> None:
    """Run until SIGTERM/SIGINT; the app's lifespan opens and drains its resources."""
    uvicorn.run(
        app,
        host=host,
        port=port,
        ws_max_size=WS_MAX_BYTES,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
    )
