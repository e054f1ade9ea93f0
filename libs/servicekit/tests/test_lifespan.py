"""A service's start-up closes what it opened, in reverse order, however it ends."""

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from llmsafespace.servicekit import ServiceSettings, starting

SETTINGS = ServiceSettings(LOG_FORMAT="json", LOG_LEVEL="warning")


async def test_a_failed_start_up_closes_what_it_had_opened_in_reverse_order() -> None:
    closed: list[str] = []

    def closer(name: str) -> Callable[[], Awaitable[None]]:
        async def close() -> None:
            closed.append(name)

        return close

    async def start_up() -> None:
        async with starting("test-lifespan", SETTINGS) as up:
            up.on_stop(closer("database"))
            up.on_stop(closer("driver"))
            raise ConnectionRefusedError("the bus is down")  # a later start-up step fails

    with pytest.raises(ConnectionRefusedError):
        await start_up()
    assert closed == ["driver", "database"]


async def test_shutdown_cancels_background_tasks_before_closing_what_they_use() -> None:
    started = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    seen_at_close: list[bool] = []

    async def tend() -> None:
        started.set()
        await asyncio.Event().wait()

    async def close_driver() -> None:
        seen_at_close.append(tasks[0].cancelling() > 0 or tasks[0].cancelled())

    async with starting("test-lifespan", SETTINGS) as up:
        up.on_stop(close_driver)
        tasks.append(up.task(tend()))
        await started.wait()
    assert seen_at_close == [True]
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
