import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette

from llmsafespace.servicekit.http import _Server


class _Resource:
    """Something a lifespan opens (an instance: the collector tracks it)."""


async def test_what_start_up_made_is_frozen_once_the_server_has_started() -> None:
    """The collector's full passes skip what a service built before serving (see
    `_Server`): the lifespan's objects are frozen by the time the port answers."""
    made: list[_Resource] = []

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        made.append(_Resource())
        yield

    gc.unfreeze()
    config = uvicorn.Config(
        Starlette(lifespan=lifespan), host="127.0.0.1", port=0, log_config=None, lifespan="on"
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:  # noqa: ASYNC110 (uvicorn offers no event)
                await asyncio.sleep(0.01)
        assert gc.is_tracked(made[0])
        assert not any(obj is made[0] for obj in gc.get_objects())  # in no generation
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        server.should_exit = True
        await serving
