"""The only wiring: settings in, a Starlette app out (bus subscribers run in its lifespan)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

import asyncpg
import structlog
from faststream.nats import NatsBroker
from starlette.applications import Starlette

from llmsafespace.contracts.bus_permissions import inbox_prefix
from llmsafespace.runtime import driver_for
from llmsafespace.servicekit import database_ready, middlewares, operational_routes, starting

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
        settings.nats_url.get_secret_value(),
        inbox_prefix=inbox_prefix(SERVICE),
        middlewares=middlewares(),
        logger=None,
    )
    pool: asyncpg.Pool | None = None

    async def readiness() -> dict[str, bool]:
        return {"bus": await broker.ping(timeout=1), "database": await database_ready(pool)}

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        async with starting(SERVICE, settings) as up:
            migrations = files("llmsafespace.warmpool_svc") / "migrations"
            pool = await up.database(migrations, max_size=20)
            catalog = settings.catalog()
            driver = driver_for(settings.runtime, catalog)
            up.on_stop(driver.close)
            bus = await up.bus(broker)
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
            await up.serve(broker, create_router(pools, settings.max_workers))
            up.on_stop(replenisher.close)  # before the broker stops, as tending stops
            up.task(replenisher.run(settings.replenish_interval))
            log.info("service_started", http_port=settings.http_port)
            yield

    return Starlette(routes=operational_routes(readiness), lifespan=lifespan)
