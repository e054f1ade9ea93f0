"""The only wiring: settings in, a Starlette app out (bus subscribers run in its lifespan)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files

import asyncpg
import structlog
from faststream.nats import NatsBroker
from pydantic import SecretStr
from starlette.applications import Starlette

from llmsafespace.contracts.bus_permissions import inbox_prefix
from llmsafespace.servicekit import database_ready, middlewares, operational_routes, starting

from .agents import Agents
from .builds import Builds
from .handlers import create_build_router, create_router, create_terminal_router
from .inflight import InFlight
from .packages import Packages
from .prepare import create_prepare_router
from .runner import Runner
from .settings import Settings
from .store import ExecutionStore
from .terminals import Terminals
from .transfers import Files

SERVICE = "exec-svc"
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
            pool = await up.database(files("llmsafespace.exec_svc") / "migrations")
            bus = await up.bus(broker)
            agents = Agents(bus, settings.resolve_ttl, settings.resolve_timeout)
            up.on_stop(agents.close)
            store = ExecutionStore(pool)
            flights = InFlight(
                broker.connection,
                bus,
                lambda kind, user, result: store.record(user, kind, result, (0, 0)),
                settings.lost_after,
            )
            await flights.start()
            up.on_stop(flights.stop)
            runner = Runner(
                agents, store, bus, broker.connection, settings.output_limit_bytes, flights
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
            terminals = Terminals(
                agents,
                broker.connection,
                settings.terminal_grace,
                settings.terminal_scrollback_chars,
            )
            builds = Builds(runner, packages, bus, broker.connection, settings.output_limit_bytes)
            await up.serve(
                broker,
                create_router(
                    agents,
                    runner,
                    transfers,
                    packages,
                    settings.max_workers,
                    per_user=settings.max_running_per_user,
                ),
                create_build_router(builds, settings.max_workers),
                create_terminal_router(
                    terminals, settings.max_workers, per_user=settings.max_running_per_user
                ),
                create_prepare_router(agents),
                # Terminals, builds, installs and streamed executions publish until their
                # last message: they finish while the connection is still open.
                work=(
                    terminals.drain,
                    builds.drain,
                    packages.drain,
                    runner.drain,
                    transfers.drain,
                ),
            )
            log.info("service_started", http_port=settings.http_port)
            yield

    return Starlette(routes=operational_routes(readiness), lifespan=lifespan)


def _revealed(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()
