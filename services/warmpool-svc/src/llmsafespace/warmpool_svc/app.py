"""The only wiring: settings in, a Starlette app out (bus subscribers run in its lifespan)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from faststream.nats import NatsBroker
from starlette.applications import Starlette

from llmsafespace.servicekit import configure_logging, error_middleware, operational_routes

from .handlers import create_router
from .pools import Pools
from .settings import Settings

SERVICE = "warmpool-svc"
log = structlog.get_logger()


def create_app(settings: Settings) -> Starlette:
    broker = NatsBroker(settings.nats_url, middlewares=[error_middleware()], logger=None)
    broker.include_router(create_router(Pools()))

    async def readiness() -> dict[str, bool]:
        return {"bus": await broker.ping(timeout=1)}

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        configure_logging(SERVICE, settings.log_format, settings.log_level)
        await broker.start()
        log.info("service_started", http_port=settings.http_port)
        try:
            yield
        finally:
            await broker.stop()

    return Starlette(routes=operational_routes(readiness), lifespan=lifespan)
