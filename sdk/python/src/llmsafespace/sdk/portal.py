"""Runs the async implementation for synchronous callers: a private event loop on a
daemon thread, one per sync object, so sync code never shares (or blocks) a caller's loop."""

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import TypeVar

T = TypeVar("T")


class Portal:
    """`call(coroutine)` runs it on the private loop and returns its result (or raises its
    exception); `iterate(async_iterator)` drives one as a plain iterator."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="llmsafespace-portal", daemon=True
        )
        self._thread.start()

    def call(self, awaitable: Awaitable[T]) -> T:
        async def run() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    yield self.call(anext(iterator))
                except StopAsyncIteration:
                    return
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None and self._loop.is_running():
                self.call(close())

    def close(self) -> None:
        """Stop the loop and its thread; the portal cannot be used afterwards."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def run_sync(awaitable: Awaitable[T]) -> T:
    """Run one coroutine to completion on a short-lived portal (safe inside a running
    event loop, unlike `asyncio.run`)."""
    portal = Portal()
    try:
        return portal.call(awaitable)
    finally:
        portal.close()
