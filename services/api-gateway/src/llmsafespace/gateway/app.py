"""The only wiring: settings in, the Starlette app out."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

import asyncpg
import nats
import redis.asyncio as aioredis
import structlog
from nats.aio.client import Client as NatsClient
from starlette.applications import Starlette
from starlette.routing import Mount

from llmsafespace.servicekit import (
    Bus,
    configure_logging,
    connect,
    database_ready,
    migrate,
    operational_routes,
)

from .accounts import Accounts
from .errors import EXCEPTION_HANDLERS
from .sandboxes import ROUTES as SANDBOX_ROUTES
from .settings import Settings
from .state import State

SERVICE = "api-gateway"
API_PREFIX = "/api/v1"
log = structlog.get_logger()


def create_app(settings: Settings) -> Starlette:
    pool: asyncpg.Pool | None = None
    connection: NatsClient | None = None
    cache: aioredis.Redis = aioredis.from_url(settings.redis_url, socket_timeout=2)

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
        configure_logging(SERVICE, settings.log_format, settings.log_level)
        pool = await connect(settings.database_url)
        await migrate(pool, SERVICE, files("llmsafespace.gateway") / "migrations")
        accounts = Accounts(pool)
        if settings.bootstrap_admin_key:
            await accounts.ensure_admin_key(settings.bootstrap_admin_key)
        connection = await nats.connect(settings.nats_url, name=SERVICE, max_reconnect_attempts=-1)
        bus = Bus(connection, settings.request_timeout)
        log.info("service_started", http_port=settings.http_port)
        try:
            yield {"bus": bus, "accounts": accounts, "settings": settings}
        finally:
            await connection.drain()
            await cache.aclose()
            await pool.close()

    return Starlette(
        routes=[*operational_routes(readiness), Mount(API_PREFIX, routes=SANDBOX_ROUTES)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
