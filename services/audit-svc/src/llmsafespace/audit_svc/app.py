"""The only wiring: settings in, a Starlette app out (bus consumers run in its lifespan)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

import asyncpg
import structlog
from faststream.nats import NatsBroker
from starlette.applications import Starlette

from llmsafespace.servicekit import (
    configure_logging,
    connect,
    database_ready,
    ensure_streams,
    middlewares,
    migrate,
    operational_routes,
    stop_gracefully,
)

from .consumer import AuditConsumer
from .handlers import create_router
from .settings import Settings
from .store import AuditStore

SERVICE = "audit-svc"
log = structlog.get_logger()


def create_app(settings: Settings) -> Starlette:
    broker = NatsBroker(
        settings.nats_url.get_secret_value(), middlewares=middlewares(), logger=None
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
        configure_logging(SERVICE, settings.log_format, settings.log_level)
        pool = await connect(settings.database_url.get_secret_value())
        await migrate(pool, SERVICE, files("llmsafespace.audit_svc") / "migrations")
        await broker.connect()
        await ensure_streams(broker.connection)
        store = AuditStore(pool)
        consumer = AuditConsumer(
            broker.connection,
            store,
            batch_size=settings.batch_size,
            ack_wait=settings.ack_wait,
            linger=settings.linger,
        )
        broker.include_router(create_router(store))
        await broker.start()
        await consumer.start()
        log.info("service_started", http_port=settings.http_port)
        try:
            yield
        finally:
            await consumer.stop()
            await stop_gracefully(broker)
            await pool.close()

    return Starlette(routes=operational_routes(readiness), lifespan=lifespan)
