"""The HTTP face every service has: /health, /ready, /metrics; and how it is served."""

import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]
ReadinessInfo = Callable[[], dict[str, object]]


def operational_routes(readiness: ReadinessCheck, info: ReadinessInfo | None = None) -> list[Route]:
    """`/health`: the process answers. `/ready`: every dependency answers (503 otherwise).

    ``info``'s dict is added to the `/ready` body; it does not affect readiness.
    """

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def ready(_: Request) -> Response:
        checks = await readiness()
        ok = all(checks.values())
        body: dict[str, object] = {"status": "ready" if ok else "not_ready", "checks": checks}
        if info is not None:
            body.update({key: value for key, value in info().items() if key not in body})
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]


WS_MAX_BYTES = 1024 * 1024  # a larger WebSocket message closes the socket with 1009


STARTUP_FAILURE = 3  # uvicorn's exit code for an app that did not start


class _Server(uvicorn.Server):
    """uvicorn re-raises the SIGTERM/SIGINT it caught once it has shut down, so a
    process stopped gracefully would end with -15. A requested stop that drained
    cleanly is a clean exit: code 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            try:
                yield
            finally:
                self._captured_signals.clear()


KEEP_ALIVE_SECONDS = 75


def serve(app: Starlette, host: str, port: int) -> None:
    """Run until SIGTERM/SIGINT, then drain: in-flight HTTP requests finish, the app's
    lifespan drains and closes its resources, and the process exits with code 0."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws_max_size=WS_MAX_BYTES,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
        # Longer than clients keep idle connections (httpx: 5 s, the same as uvicorn's
        # default): otherwise a client may send on a connection the server is closing.
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    server = _Server(config)
    server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)
