"""The only wiring: settings in, the Starlette app out."""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

import asyncpg
import nats
import structlog
from nats.aio.client import Client as NatsClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from llmsafespace.contracts.bus_permissions import inbox_prefix
from llmsafespace.servicekit import Bus, database_ready, starting

from .accounts import CACHE_PREFIX, Accounts, cache_client
from .audit import ROUTES as AUDIT_ROUTES
from .catalog import ROUTES as CATALOG_ROUTES
from .confirmations import Confirmations
from .console import PATH as CONSOLE_PATH
from .console import mount as console
from .errors import EXCEPTION_HANDLERS, UnexpectedErrors
from .files import ROUTES as FILE_ROUTES
from .mcp import McpEndpoint
from .observability import Observability
from .openapi import ROUTES as OPENAPI_ROUTES
from .operation import Operation, described
from .operational import routes as operational_routes
from .packages import ROUTES as PACKAGE_ROUTES
from .ratelimit import RateLimiter
from .routing import ApiRouter, redirect_to_slash
from .sandboxes import ROUTES as SANDBOX_ROUTES
from .settings import Settings
from .snapshots import ROUTES as SNAPSHOT_ROUTES
from .state import State
from .stream import ROUTE as STREAM_ROUTE
from .templates import ROUTES as TEMPLATE_ROUTES
from .terminal import ROUTE as TERMINAL_ROUTE
from .users import ROUTES as USER_ROUTES
from .warmpools import ROUTES as WARMPOOL_ROUTES

SERVICE = "api-gateway"
API_PREFIX = "/api/v1"
log = structlog.get_logger()
# Declared here rather than next to the route, in stream.py, while another change owns it.
STREAM_OPERATION = Operation(
    "WebSocket: streamed executions (upgrade required)",
    "executions",
    None,
    101,
    errors=(403, 404),
    description="A WebSocket endpoint; see the architecture document for its messages."
    " Rich results arrive as `{type: display, executionId, data, isMainResult,"
    " truncated, seq, timestamp}`, in order with `output` and replayed by `resume`."
    " Browsers pass `?token=` (from `POST /auth/token`).",
)


def create_app(settings: Settings) -> Starlette:
    pool: asyncpg.Pool | None = None
    connection: NatsClient | None = None
    cache = cache_client(settings.redis_url.get_secret_value())
    mcp = McpEndpoint(API_PREFIX)

    async def readiness() -> dict[str, bool]:
        try:
            cache_ok = bool(await cache.ping())
        except Exception:
            cache_ok = False
        return {
            "bus": connection is not None and connection.is_connected,
            "database": await database_ready(pool),
            "cache": cache_ok,
        }

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[State]:
        nonlocal pool, connection
        async with starting(SERVICE, settings) as up:
            pool = await up.database(files("llmsafespace.gateway") / "migrations")
            up.on_stop(cache.aclose)
            accounts = Accounts(pool, cache, _token_secret(settings), settings.token_seconds)
            confirmations = Confirmations(settings.redis_url.get_secret_value(), CACHE_PREFIX)
            confirmations.start()
            up.on_stop(confirmations.close)
            if settings.bootstrap_admin_key:
                await accounts.ensure_admin_key(settings.bootstrap_admin_key.get_secret_value())
            connection = await nats.connect(
                settings.nats_url.get_secret_value(),
                name=SERVICE,
                inbox_prefix=inbox_prefix(SERVICE),
                max_reconnect_attempts=-1,
            )
            up.on_stop(connection.drain)
            log.info("service_started", http_port=settings.http_port)
            yield {
                "bus": Bus(connection, settings.request_timeout),
                "nats": connection,
                "accounts": accounts,
                "limiter": RateLimiter(cache, settings.rate_limits, confirmations),
                "settings": settings,
            }

    app = Starlette(
        routes=[
            *operational_routes(readiness),
            *OPENAPI_ROUTES,
            redirect_to_slash(CONSOLE_PATH),
            console(),
            mcp.route(),
            Mount(
                API_PREFIX,
                app=ApiRouter(
                    [
                        *FILE_ROUTES,
                        *PACKAGE_ROUTES,
                        *SANDBOX_ROUTES,
                        *SNAPSHOT_ROUTES,
                        described(STREAM_ROUTE, STREAM_OPERATION),
                        TERMINAL_ROUTE,
                        *WARMPOOL_ROUTES,
                        *TEMPLATE_ROUTES,
                        *CATALOG_ROUTES,
                        *USER_ROUTES,
                        *AUDIT_ROUTES,
                    ]
                ),
            ),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(Observability), Middleware(UnexpectedErrors)],
        lifespan=mcp.around(lifespan),
    )
    # Starlette's own redirects build `Location` from the client's Host header: none
    # here (see routing.py); the console's bare path has a route of its own.
    app.router.redirect_slashes = False
    return app


def _token_secret(settings: Settings) -> bytes:
    if settings.jwt_secret:
        return settings.jwt_secret.get_secret_value().encode()
    log.warning("jwt_secret_unset", effect="access tokens are valid on this replica only")
    return secrets.token_bytes(32)
