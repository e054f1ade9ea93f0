"""The only wiring: settings in, a Starlette app out (bus subscribers run in its lifespan)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

import asyncpg
import structlog
from faststream.nats import NatsBroker
from pydantic import SecretStr
from starlette.applications import Starlette

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

from .agents import Agents
from .builds import Builds
from .handlers import create_build_router, create_router, create_terminal_router
from .packages import Packages
from .runner import Runner
from .settings import Settings
from .store import ExecutionStore
from .terminals import Terminals
from .transfers import Files

SERVICE = "exec-svc"
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
        pool = await connect(settings.database_url.get_secret_value())
        await migrate(pool, SERVICE, files("llmsafespace.exec_svc") / "migrations")
        await broker.connect()
        await ensure_streams(broker.connection)
        bus = Bus(broker.connection, settings.request_timeout)
        agents = Agents(bus, settings.resolve_ttl)
        runner = Runner(
            agents, ExecutionStore(pool), bus, broker.connection, settings.output_limit_bytes
        )
        transfers = Files(
            agents, bus, broker.connection, settings.max_file_bytes, settings.transfer_idle
        )
        packages = Packages(
            agents,
            runner,
            bus,
            broker.connection,
            settings.output_limit_bytes,
            _revealed(settings.package_index_url),  # a private index's URL may hold a token
            _revealed(settings.npm_registry_url),
        )
        broker.include_router(
            create_router(agents, runner, transfers, packages, settings.max_workers)
        )
        builds = Builds(runner, packages, bus, broker.connection, settings.output_limit_bytes)
        broker.include_router(create_build_router(builds, settings.max_workers))
        terminals = Terminals(
            agents, broker.connection, settings.terminal_grace, settings.terminal_scrollback_chars
        )
        broker.include_router(create_terminal_router(terminals, settings.max_workers))
        await broker.start()
        log.info("service_started", http_port=settings.http_port)
        try:
            yield
        finally:
            # Terminals, installs and streamed executions publish until their last message:
            # they finish while the connection is still open.
            await stop_gracefully(
                broker,
                (terminals.drain, builds.drain, packages.drain, runner.drain, transfers.drain),
            )
            await agents.close()
            await pool.close()

    return Starlette(routes=operational_routes(readiness), lifespan=lifespan)


def _revealed(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()
