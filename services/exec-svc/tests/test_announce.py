"""An execution's `started` event: published exactly once, with its end when it is short."""

import asyncio
import json
from datetime import UTC, datetime

from llmsafespace.contracts import ExecutionEvent, ExecutionType
from llmsafespace.exec_svc.announce import StartedEvent
from llmsafespace.servicekit import Bus

SUBJECT = "llmsafespace.evt.exec.sb-aaaaaaaaaaaa.exec-1.started"
STARTED = datetime(2026, 1, 1, tzinfo=UTC)
EVENT = ExecutionEvent(
    execution_id="exec-1",
    sandbox_id="sb-aaaaaaaaaaaa",
    user_id="usr-aaaaaaaaaaaa",
    type=ExecutionType.CODE,
    started_at=STARTED,
)


class Published:
    """The bus connection's side a `Bus.event` reaches: what was published, in order."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, object]]] = []
        self.arrived = asyncio.Event()

    @property
    def is_connected(self) -> bool:
        return True

    async def request(
        self, subject: str, payload: bytes, *, timeout: float, headers: dict[str, str] | None
    ) -> object:
        raise AssertionError("an event is never a request")

    async def publish(self, subject: str, payload: bytes) -> None:
        self.messages.append((subject, json.loads(payload)))
        self.arrived.set()


class Flights:
    """Executions recorded in flight, as `InFlight` keeps them."""

    def __init__(self) -> None:
        self.running: dict[tuple[str, str], ExecutionEvent] = {}
        self.ever: list[ExecutionEvent] = []

    async def record(self, started: ExecutionEvent) -> None:
        self.running[started.sandbox_id, started.execution_id] = started
        self.ever.append(started)

    async def done(self, sandbox_id: str, execution_id: str) -> None:
        del self.running[sandbox_id, execution_id]


async def test_a_short_execution_announces_its_start_once_when_it_ends_unrecorded() -> None:
    published, flights = Published(), Flights()
    started = StartedEvent(Bus(published), SUBJECT, EVENT, flights)
    assert published.messages == []  # not before the execution ends (or DELAY passes)
    await started.ended()
    await started.now()
    assert published.messages == [(SUBJECT, EVENT.model_dump(mode="json", by_alias=True))]
    assert published.messages[0][1]["startedAt"] == "2026-01-01T00:00:00Z"
    assert flights.ever == [], "never recorded in flight"


async def test_a_long_execution_announces_itself_once_and_is_in_flight_until_it_ends() -> None:
    published, flights = Published(), Flights()
    started = StartedEvent(Bus(published), SUBJECT, EVENT, flights)
    await published.arrived.wait()  # nobody called `ended()`: the delay ran out
    await asyncio.sleep(0)  # the record follows the event
    assert list(flights.running) == [("sb-aaaaaaaaaaaa", "exec-1")]
    assert flights.ever[0].started_at == STARTED
    await started.ended()  # the execution ends later
    assert [subject for subject, _ in published.messages] == [SUBJECT]
    assert flights.running == {}
