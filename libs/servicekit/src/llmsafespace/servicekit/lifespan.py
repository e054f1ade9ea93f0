"""One service's start-up and shutdown, written once.

Everything a service opens goes through one `Startup` (an `AsyncExitStack`): each
resource is closed in the reverse order it was opened, when the service stops and also
when a later start-up step fails (a database that is up while NATS is not is closed
again, not leaked). The broker is stopped by `stop_gracefully`, registered when the
broker starts, so it runs before anything opened earlier is closed and after anything
started later (background tasks) is cancelled: the service's own work (the `work`
drains) finishes over a still-open connection, then the broker stops, then the rest.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from importlib.resources.abc import Traversable
from typing import Any

import asyncpg
from faststream.nats import NatsBroker

from .bus import Bus, ensure_streams
from .commands import CommandServer
from .db import connect, migrate
from .logs import configure_logging
from .settings import ServiceSettings
from .shutdown import stop_gracefully
from .subscribers import Router


class Startup:
    """The resources of one service, each closed in reverse order when it stops."""

    def __init__(self, service: str, settings: ServiceSettings, stack: AsyncExitStack) -> None:
        self._service = service
        self._settings = settings
        self._stack = stack
        self._serving: set[NatsBroker] = set()

    async def database(self, migrations: Traversable, *, max_size: int = 10) -> asyncpg.Pool:
        """The service's connection pool, its migrations applied."""
        pool = await connect(self._settings.database_url.get_secret_value(), max_size=max_size)
        self._stack.push_async_callback(pool.close)
        await migrate(pool, self._service, migrations)
        return pool

    async def bus(self, broker: NatsBroker) -> Bus:
        """Connect `broker` (its streams ensured) and return the service's outgoing bus."""
        await broker.connect()
        self._stack.push_async_callback(self._close_unserved, broker)
        await ensure_streams(broker.connection, self._settings.output_stream_bytes())
        return Bus(broker.connection, self._settings.request_timeout)

    async def serve(
        self,
        broker: NatsBroker,
        *routers: Router,
        work: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        """Start answering on `routers` (their commands over plain subscriptions on the
        broker's connection); at shutdown, drain them and the service's `work` before
        the broker stops (see `stop_gracefully`)."""
        for router in routers:
            broker.include_router(router)
        commands = CommandServer(broker.connection)
        self._serving.add(broker)
        self._stack.push_async_callback(stop_gracefully, broker, commands, work)
        await broker.start()
        await commands.start([answer for router in routers for answer in router.answers])

    def task(self, coroutine: Coroutine[Any, Any, None]) -> "asyncio.Task[None]":
        """A background task, cancelled at shutdown before anything opened earlier closes."""
        task = asyncio.create_task(coroutine)
        self._stack.callback(task.cancel)
        return task

    def on_stop(self, close: Callable[[], Awaitable[object]]) -> None:
        """Call `close` at shutdown, after everything opened later is closed."""
        self._stack.push_async_callback(close)

    async def _close_unserved(self, broker: NatsBroker) -> None:
        """A broker that never started serving still holds its connection."""
        if broker not in self._serving:
            await broker.stop()


@asynccontextmanager
async def starting(service: str, settings: ServiceSettings) -> AsyncIterator[Startup]:
    """Configure logging, then open the service's resources; close them all on exit."""
    configure_logging(service, settings.log_format, settings.log_level)
    async with AsyncExitStack() as stack:
        yield Startup(service, settings, stack)
