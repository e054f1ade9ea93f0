"""Brings a sandbox's freezer back to what its row says when a pause or resume was cut
between the two — sandbox-svc killed after the call committed the row and before the
driver froze or thawed the runtime: a `running` row on a frozen runtime is thawed, a
`paused` row on a runtime that runs is frozen, and the event the cut call never sent
goes out.

The runtime is brought to the row, never the row to the runtime. The row is where the
call was decided, and everything since has acted on it: the caller's reads, every resolve
(409 `sandbox_paused`, or the agent's endpoint), the quota (a paused sandbox's memory is
not counted; a resumed one's was admitted again) and the lifetime clock. Moving the row
back would undo what they were told, and an unpause would need a quota admission that
may fail now; a freeze or thaw is what the cut call was about to do anyway.

A pause or resume in flight leaves the same mismatch for a moment (its row committed,
the freezer not yet written), on this replica or another. So a mismatch is repaired
only once seen again on a later reconcile pass at least `SETTLE` after the first, the
row unchanged in between (every pause and resume moves its status, `paused_at` or
expiry), and under `Lifecycle.moving`: never during this instance's own pause, resume
or snapshot of that sandbox. Only drivers that freeze (`Pauses`, the local one): a
sandbox paused by snapshot (Kubernetes) has no freezer to disagree with its row.
"""

import time
from dataclasses import dataclass
from datetime import datetime

import structlog

from llmsafespace.contracts import (
    RuntimeId,
    Sandbox,
    SandboxEventName,
    SandboxStatus,
    subjects,
)
from llmsafespace.runtime import DriverError, Pauses
from llmsafespace.servicekit import Bus

from .lifecycle import Lifecycle
from .store import SandboxStore

log = structlog.get_logger()

# Longer than a pause or resume in flight keeps row and freezer apart: after its commit, a
# statement (4 s, and as much for its cancel) and the freezer's own wait (10 s at most).
SETTLE = 25.0

RowState = tuple[SandboxStatus, datetime | None, datetime]


def _row_state(sandbox: Sandbox) -> RowState:
    """What every pause and resume changes on the row."""
    return sandbox.status, sandbox.paused_at, sandbox.expires_at


@dataclass(frozen=True)
class _Sighting:
    row: RowState
    since: float  # time.monotonic() of the first pass that saw it


class PauseRepair:
    def __init__(
        self,
        store: SandboxStore,
        driver: Pauses,
        bus: Bus,
        lifecycle: Lifecycle,
        settle: float = SETTLE,
    ) -> None:
        self._store = store
        self._driver = driver
        self._bus = bus
        self._lifecycle = lifecycle
        self._settle = settle
        self._sightings: dict[str, _Sighting] = {}  # mismatches seen, by sandbox

    async def check(self, sandboxes: list[tuple[Sandbox, RuntimeId]]) -> None:
        """One reconcile pass over the running and paused sandboxes whose runtime is
        alive (each with its runtime): repair the mismatches that persisted, remember
        the ones seen for the first time."""
        now = time.monotonic()
        sightings: dict[str, _Sighting] = {}
        for sandbox, runtime_id in sandboxes:
            paused = sandbox.status is SandboxStatus.PAUSED
            if paused == await self._driver.is_paused(runtime_id):
                continue
            row = _row_state(sandbox)
            seen = self._sightings.get(sandbox.id)
            if seen is None or seen.row != row:
                sightings[sandbox.id] = _Sighting(row, now)  # maybe a call in flight
            elif now - seen.since < self._settle:
                sightings[sandbox.id] = seen
            elif not await self._repaired(sandbox.id, runtime_id, row):
                sightings[sandbox.id] = seen  # again on the next pass
        self._sightings = sightings

    async def _repaired(self, sandbox_id: str, runtime_id: RuntimeId, row: RowState) -> bool:
        """Freeze or thaw the runtime as the row says, if the row is still as it was seen,
        and send the event the cut call did not; False when it could not be done now."""
        if self._lifecycle.is_moving(sandbox_id):
            return False  # this instance is at it (a snapshot can take minutes: not waited)
        async with self._lifecycle.moving(sandbox_id):  # (taken at once: nothing held it)
            sandbox = await self._store.get(sandbox_id)
            if sandbox is None or _row_state(sandbox) != row:
                return True  # a pause, resume or end got there meanwhile
            paused = sandbox.status is SandboxStatus.PAUSED
            try:
                if paused == await self._driver.is_paused(runtime_id):
                    return True
                if paused:
                    await self._driver.pause(runtime_id)
                else:
                    await self._driver.resume(runtime_id)
            except DriverError as exc:
                log.warning("sandbox_freezer_not_repaired", sandbox_id=sandbox_id, error=str(exc))
                return False
            log.warning("sandbox_freezer_repaired", sandbox_id=sandbox_id, status=sandbox.status)
            event = SandboxEventName.PAUSED if paused else SandboxEventName.RESUMED
            told = sandbox if paused else sandbox.model_copy(update={"memory_kept": True})
            await self._bus.event(subjects.sandbox_event(sandbox_id, event), told)
        return True
