"""Work that runs on after its command's reply (a streamed execution, an install, a
build, a terminal, a transfer), held so graceful shutdown can wait for it or stop it.

A task nobody awaits would lose its exception; one that fails is logged instead.
"""

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger()


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` past the reply being sent."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("background_work_failed", exc_info=error)

    def cancel(self) -> None:
        """Stop all of it (work that holds nothing worth finishing, e.g. a transfer)."""
        for task in self._tasks:
            task.cancel()

    async def wait(self) -> None:
        """Until all of it has ended."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
