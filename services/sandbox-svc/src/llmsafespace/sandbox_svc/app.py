"""The only wiring: settings in, a Starlette app out (bus subscribers run in its lifespan)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

import asyncpg
import structlog
from faststream.nats import NatsBroker
from starlette.applications import Starlette

from llmsafespace.runtime import LocalConfig, create_driver
from llmsafespace.servicekit import (
    Bus,
    configure_logging,
    connect,
    database_ready,
    ensure_streams,
    middlewares,
    migrate,
    operational_routes,
)

from .handlers import create_router
from .inventory import Inventory
from .lifecycle import Lifecycle
from .reaper import Reaper
from .settings import Settings
from .store import SandboxStore

SERVICE = "sandbox-svc"
REAPER_INTERVAL = 1.0
log = structlog.get_logger()


def create_app(settings: Settings) -> Starlette:
    broker = NatsBroker(settings.nats_url, middlewares=middlewares(), logger=None)
    pool: asyncpg.Pool | None = None
    protections: dict[str, object] | None = None  # the driver's, once it has started

    async def readiness() -> dict[str, bool]:
        return {"bus": await broker.ping(timeout=1), "database": await database_ready(pool)}

    def info() -> dict[str, object]:
        return {} if protections is None else {"protections": protections}

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        nonlocal pool, protections
        configure_logging(SERVICE, settings.log_format, settings.log_level)
        pool = await connect(settings.database_url)
        await migrate(pool, SERVICE, files("llmsafespace.sandbox_svc") / "migrations")
        catalog = settings.catalog()
        driver = create_driver(
            settings.runtime_driver,
            LocalConfig(runtime_dir=settings.runtime_dir, interpreters=catalog.interpreters()),
        )
        protections = driver.protections()
        await broker.connect()
        await ensure_streams(broker.connection)
        store = SandboxStore(pool)
        bus = Bus(broker.connection, settings.request_timeout)
        lifecycle = Lifecycle(store, driver, bus, catalog, settings.claim_timeout, settings.quota())
        inventory = Inventory(store, driver, lifecycle, catalog)
        broker.include_router(create_router(lifecycle, inventory, settings.max_workers))
        await broker.start()
        reaper = asyncio.create_task(Reaper(pool, store, lifecycle, driver).run(REAPER_INTERVAL))
        log.info("service_started", http_port=settings.http_port)
        try:
            yield
        finally:
            reaper.cancel()
            await broker.stop()
            await driver.close()
            await pool.close()

    return Starlette(routes=operational_routes(readiness, info), lifespan=lifespan)
