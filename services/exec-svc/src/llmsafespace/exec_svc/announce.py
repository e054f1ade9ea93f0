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

from llmsafespace.contracts import ExecutionEvent
from llmsafespace.servicekit import Bus

DELAY = 0.05  # seconds a running execution waits before announcing itself alone


class StartedEvent:
    """Publishes `event` on `subject` after DELAY, or at `now()` if that comes first."""

    def __init__(self, bus: Bus, subject: str, event: ExecutionEvent) -> None:
        self._bus = bus
        self._subject = subject
        self._event = event
        self._sent = False
        self._timer = asyncio.get_running_loop().call_later(DELAY, self._announce)
        self._task: asyncio.Task[None] | None = None

    def _announce(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.now())

    async def now(self) -> None:
        """Publish it unless it went out already (call before the terminal event)."""
        self._timer.cancel()
        if self._sent:
            return
        self._sent = True  # set before publishing: the publish appends in its first step
        await self._bus.event(self._subject, self._event)
