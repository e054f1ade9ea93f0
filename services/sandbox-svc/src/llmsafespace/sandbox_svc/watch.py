"""Fails sandboxes whose runtime failed on its own: a Pod that crashed, was evicted or
vanished, a local sandbox whose agent died (drivers that report such failures).

Every replica watches. A runtime another replica is ending (terminate, expiry) also
vanishes, so a report waits `settle` seconds and acts only if the row is still live;
ending is idempotent, so two replicas acting on one failure leave one `failed` event.
"""

import asyncio
from collections.abc import AsyncIterator

import structlog

from llmsafespace.contracts import SandboxEventName, SandboxStatus
from llmsafespace.runtime import SandboxFailure

from .lifecycle import Lifecycle
from .store import SandboxStore

log = structlog.get_logger()

SETTLE = 3.0


class FailureWatch:
    def __init__(self, store: SandboxStore, lifecycle: Lifecycle, settle: float = SETTLE) -> None:
        self._store = store
        self._lifecycle = lifecycle
        self._settle = settle
        self._pending: set[asyncio.Task[None]] = set()

    async def run(self, failures: AsyncIterator[SandboxFailure]) -> None:
        """Handle each reported failure (concurrently) until cancelled."""
        try:
            async for failure in failures:
                task = asyncio.create_task(self._handle(failure))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
        finally:
            for task in list(self._pending):
                task.cancel()

    async def _handle(self, failure: SandboxFailure) -> None:
        try:
            if await self._store.live_on_runtime(failure.runtime_id) is None:
                return  # ended already, or a warm runtime nobody holds (warmpool-svc's)
            await asyncio.sleep(self._settle)
            sandbox = await self._store.live_on_runtime(failure.runtime_id)
            if sandbox is None:
                return
            log.warning(
                "sandbox_runtime_failed",
                sandbox_id=sandbox.id,
                runtime_id=failure.runtime_id,
                reason=failure.reason,
            )
            await self._lifecycle.end(
                sandbox, SandboxStatus.FAILED, SandboxEventName.FAILED, failure.reason
            )
        except Exception:
            log.exception("sandbox_failure_not_recorded", runtime_id=failure.runtime_id)
