"""An execution's `started` event, published once and, for a short execution, in the
same socket write as its end.

Every execution still puts `started` on the bus before its terminal event; what changes
is when. An execution still running after `DELAY` announces itself then; one that ends
sooner (most: `print(1)` takes about a millisecond) publishes `started` right before its
terminal event, so the two leave in one write to NATS instead of two, each of which wakes
the server. The event carries `startedAt`, so a subscriber knows the real start either
way.
"""

import asyncio
from typing import Protocol

from llmsafespace.contracts import ExecutionEvent
from llmsafespace.servicekit import Bus

DELAY = 0.05  # seconds a running execution waits before announcing itself alone


class Flights(Protocol):
    """Where running executions are recorded (`inflight.InFlight`)."""

    async def record(self, started: ExecutionEvent) -> None: ...

    async def done(self, sandbox_id: str, execution_id: str) -> None: ...


class StartedEvent:
    """Publishes `event` on `subject` after DELAY (and records the execution in
    `flights`), or at `now()` if that comes first."""

    def __init__(self, bus: Bus, subject: str, event: ExecutionEvent, flights: Flights) -> None:
        self._bus = bus
        self._subject = subject
        self._event = event
        self._flights = flights
        self._sent = False
        self._recorded = False
        self._timer = asyncio.get_running_loop().call_later(DELAY, self._announce)
        self._task: asyncio.Task[None] | None = None

    def _announce(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._alone())

    async def _alone(self) -> None:
        await self.now()
        self._recorded = True
        await self._flights.record(self._event)

    async def now(self) -> None:
        """Publish it unless it went out already."""
        self._timer.cancel()
        if self._sent:
            return
        self._sent = True  # set before publishing: the publish appends in its first step
        await self._bus.event(self._subject, self._event)

    async def ended(self) -> None:
        """Before the terminal event: `started` is out, and the record in flight gone."""
        self._timer.cancel()
        if self._task is not None:
            await self._task
        await self.now()
        if self._recorded:
            await self._flights.done(self._event.sandbox_id, self._event.execution_id)
