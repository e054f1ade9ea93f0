"""The only wiring: settings in, a Starlette app out (bus consumers run in its lifespan)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

import asyncpg
import structlog
from faststream.nats import NatsBroker
from starlette.applications import Starlette

from llmsafespace.contracts.bus_permissions import inbox_prefix
from llmsafespace.servicekit import database_ready, middlewares, operational_routes, starting

from .consumer import AuditConsumer
from .handlers import create_router
from .settings import Settings
from .store import AuditStore

SERVICE = "audit-svc"
log = structlog.get_logger()


def create_app(settings: Settings) -> Starlette:
    broker = NatsBroker(
        settings.nats_url.get_secret_value(),
        inbox_prefix=inbox_prefix(SERVICE),
        middlewares=middlewares(),
        logger=None,
    )
    pool: asyncpg.Pool | None = None
    consumer: AuditConsumer | None = None

    async def readiness() -> dict[str, bool]:
        return {
            "bus": await broker.ping(timeout=1),
            "database": await database_ready(pool),
            "consumer": consumer is not None and consumer.running,
        }

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        nonlocal pool, consumer
        async with starting(SERVICE, settings) as up:
            pool = await up.database(files("llmsafespace.audit_svc") / "migrations")
            await up.bus(broker)
            store = AuditStore(pool)
            await up.serve(broker, create_router(store))
            consumer = AuditConsumer(
                broker.connection,
                store,
                batch_size=settings.batch_size,
                ack_wait=settings.ack_wait,
                linger=settings.linger,
            )
            up.on_stop(consumer.stop)
            await consumer.start()
            log.info("service_started", http_port=settings.http_port)
            yield

    return Starlette(routes=operational_routes(readiness), lifespan=lifespan)
