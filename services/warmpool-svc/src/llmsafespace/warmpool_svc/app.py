"""The only wiring: settings in, a Starlette app out (bus subscribers run in its lifespan)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

import asyncpg
import structlog
from faststream.nats import NatsBroker
from starlette.applications import Starlette

from llmsafespace.runtime import create_driver
from llmsafespace.servicekit import (
    Bus,
    configure_logging,
    connect,
    database_ready,
    ensure_streams,
    middlewares,
    migrate,
    operational_routes,
    stop_gracefully,
)

from .handlers import create_router
from .metrics import Metrics
from .pools import Pools
from .replenisher import Replenisher
from .settings import Settings
from .store import PoolStore

SERVICE = "warmpool-svc"
log = structlog.get_logger()


def create_app(settings: Settings) -> Starlette:
    broker = NatsBroker(
        settings.nats_url.get_secret_value(), middlewares=middlewares(), logger=None
    )
    pool: asyncpg.Pool | None = None

    async def readiness() -> dict[str, bool]:
        return {"bus": await broker.ping(timeout=1), "database": await database_ready(pool)}

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        configure_logging(SERVICE, settings.log_format, settings.log_level)
        pool = await connect(settings.database_url.get_secret_value(), max_size=20)
        await migrate(pool, SERVICE, files("llmsafespace.warmpool_svc") / "migrations")
        catalog = settings.catalog()
        driver = create_driver(
            settings.runtime, catalog.interpreters(), catalog.packages_dirs(), catalog.languages()
        )
        await broker.connect()
        await ensure_streams(broker.connection)
        bus = Bus(broker.connection, settings.request_timeout)
        store = PoolStore(pool)
        metrics = Metrics()
        replenisher = Replenisher(
            pool,
            store,
            driver,
            bus,
            metrics,
            parallel_starts=settings.parallel_starts,
            preload_timeout=settings.preload_timeout,
            claim_delay=settings.replenish_delay,
        )
        pools = Pools(
            store,
            driver,
            bus,
            catalog,
            metrics,
            replenisher.wake,
            replenisher.claimed,
            settings.limits(),
        )
        broker.include_router(create_router(pools, settings.max_workers))
        await broker.start()
        tending = asyncio.create_task(replenisher.run(settings.replenish_interval))
        log.info("service_started", http_port=settings.http_port)
        try:
            yield
        finally:
            tending.cancel()
            await replenisher.close()
            await stop_gracefully(broker)
            await driver.close()
            await pool.close()

    return Starlette(routes=operational_routes(readiness), lifespan=lifespan)
