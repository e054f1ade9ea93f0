"""Runs the async implementation for synchronous callers on one background event loop per
process (a daemon thread), so sync code never shares (or blocks) a caller's loop and a
program with many sync objects still has one extra thread."""

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from .errors import LLMSafeSpaceError

T = TypeVar("T")


@dataclass(frozen=True)
class _BackgroundLoop:
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    pid: int

    _current: ClassVar["_BackgroundLoop | None"] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def get(cls) -> "_BackgroundLoop":
        """The process's loop, started on first use; a forked child starts its own (the
        parent's thread did not come along)."""
        with cls._lock:
            current = cls._current
            if current is None or current.pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="llmsafespace-portal", daemon=True
                )
                thread.start()
                current = cls._current = cls(loop, thread, os.getpid())
            return current


class Portal:
    """`call(coroutine)` runs it on the background loop and returns its result (or raises
    its exception); `iterate(async_iterator)` drives one as a plain iterator.

    Cheap: each sync object makes its own, so the objects sharing one (a `Sandbox`, its
    `files`, its streams) can tie a finalizer to it (see `Sandbox`)."""

    def __init__(self) -> None:
        self._background = _BackgroundLoop.get()

    def call(self, awaitable: Awaitable[T]) -> T:
        async def run() -> T:
            return await awaitable

        if threading.current_thread() is self._background.thread:
            # Waiting here would wait for this very thread: the call could never end.
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise LLMSafeSpaceError(
                "a synchronous SDK call cannot run in an on_stdout/on_stderr callback (they"
                " run on the SDK's loop thread): use AsyncSandbox, or make the call after"
                " the stream"
            )
        return asyncio.run_coroutine_threadsafe(run(), self._background.loop).result()

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    yield self.call(anext(iterator))
                except StopAsyncIteration:
                    return
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                self.call(close())


def start_soon(make: Callable[[], Awaitable[object]]) -> None:
    """Start `make()` on the background loop without waiting for it: for finalizers, which
    may run on any thread, the loop's own included."""

    async def run() -> None:
        await make()

    asyncio.run_coroutine_threadsafe(run(), _BackgroundLoop.get().loop)


def run_sync(awaitable: Awaitable[T]) -> T:
    """Run one coroutine to completion on the background loop (safe inside a running
    event loop, unlike `asyncio.run`)."""
    return Portal().call(awaitable)
