"""The only wiring: settings in, a Starlette app out (bus subscribers run in its lifespan)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

import asyncpg
import structlog
from faststream.nats import NatsBroker
from starlette.applications import Starlette

from llmsafespace.contracts.bus_permissions import inbox_prefix
from llmsafespace.runtime import Pauses, ReportsFailures, driver_for
from llmsafespace.servicekit import database_ready, middlewares, operational_routes, starting

from .handlers import create_router, create_template_router
from .instance import Instance
from .inventory import Inventory
from .lifecycle import Lifecycle
from .pause_repair import PauseRepair
from .reaper import Reaper
from .settings import Settings
from .snapshot_store import SnapshotStore
from .snapshots import Snapshots
from .store import SandboxStore
from .template_store import TemplateStore
from .templates import Templates
from .watch import FailureWatch

SERVICE = "sandbox-svc"
REAPER_INTERVAL = 1.0
log = structlog.get_logger()


def create_app(settings: Settings) -> Starlette:
    broker = NatsBroker(
        settings.nats_url.get_secret_value(),
        inbox_prefix=inbox_prefix(SERVICE),
        middlewares=middlewares(),
        logger=None,
    )
    pool: asyncpg.Pool | None = None
    protections: dict[str, object] | None = None  # the driver's, once it has started

    async def readiness() -> dict[str, bool]:
        return {"bus": await broker.ping(timeout=1), "database": await database_ready(pool)}

    def info() -> dict[str, object]:
        return {} if protections is None else {"protections": protections}

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        nonlocal pool, protections
        async with starting(SERVICE, settings) as up:
            pool = await up.database(files("llmsafespace.sandbox_svc") / "migrations")
            catalog = settings.catalog()
            driver = driver_for(settings.runtime, catalog)
            up.on_stop(driver.close)
            protections = driver.protections()
            bus = await up.bus(broker)
            instance = Instance(settings.database_url.get_secret_value())
            up.on_stop(instance.close)
            await instance.hold()
            store = SandboxStore(pool, creator=instance.key)
            configured = settings.quota()
            quota = configured.within(
                protections.get("memoryCapBytes"), settings.storage_cap_bytes()
            )
            if quota.memory_bytes != configured.memory_bytes:
                log.warning(
                    "quota_memory_clamped",
                    configured=configured.memory_bytes,
                    clamped_to=quota.memory_bytes,
                )
            if quota.storage_bytes != configured.storage_bytes:
                log.warning(
                    "quota_storage_clamped",
                    configured=configured.storage_bytes,
                    clamped_to=quota.storage_bytes,
                    runtime_dir=str(settings.runtime.dir),
                )
            snapshots = Snapshots(
                store,
                SnapshotStore(pool),
                settings.chunk_store(),
                bus,
                settings.snapshot_quota(),
            )
            template_store = TemplateStore(pool)
            lifecycle = Lifecycle(
                store,
                driver,
                bus,
                catalog,
                settings.claim_timeout,
                quota,
                settings.max_paused_timeout,
                snapshots,
                template_store,
            )
            inventory = Inventory(store, driver, lifecycle, catalog, quota)
            templates = Templates(template_store, lifecycle, driver, bus, catalog, quota)
            await up.serve(
                broker,
                create_router(lifecycle, inventory, snapshots, settings.max_workers),
                create_template_router(templates, settings.max_workers),
            )
            repair = (
                PauseRepair(store, driver, bus, lifecycle) if isinstance(driver, Pauses) else None
            )
            up.task(Reaper(pool, store, lifecycle, driver, instance, repair).run(REAPER_INTERVAL))
            if isinstance(driver, ReportsFailures):
                up.task(FailureWatch(store, lifecycle).run(driver.failures()))
            log.info("service_started", http_port=settings.http_port)
            yield

    return Starlette(routes=operational_routes(readiness, info), lifespan=lifespan)
