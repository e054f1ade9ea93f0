"""Executions that outlive their exec-svc instance: recorded while they run, ended by
another instance (or this one started again) once theirs has stopped.

An execution still running when its `started` event goes out alone (`announce.DELAY`
after its start) is recorded, by its `started` event, in the key-value bucket BUCKET as
`run.<instance>.<sandbox>.<execution>`; its end deletes the record. Each instance writes
`alive.<instance>` every HEARTBEAT seconds, and every SCAN seconds looks, in its watch of
the bucket, for records whose instance has not been alive for `lost_after` seconds (itself
having been able to write its own for as long: after a bus outage every instance's writes
are old; and its watch showing its own last write: else the watch fell behind, and is
started again). It claims one by
deleting it at the revision it read (so exactly one instance does) and ends it as `error`
(`ExecutionLost`): its terminal event (audit-svc records it), its summary row and, where
the execution had output on its subject (a streamed one), the terminal marker its
followers wait for. Nothing runs on: the agent stopped the execution when its connection
dropped. An execution ending before DELAY (most: `print(1)` takes a millisecond) is never
recorded, as its `started` event is not published alone either: an instance that dies
within that time leaves no event of it behind.
"""

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable

import nats.errors
import nats.js.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.js.kv import KeyValue

from llmsafespace.contracts import (
    EndedMarker,
    ExecEventName,
    ExecutionError,
    ExecutionEvent,
    ExecutionResult,
    ExecutionType,
    subjects,
)
from llmsafespace.servicekit import Bus

from .results import bare_result

BUCKET = subjects.RUNNING_BUCKET
HEARTBEAT = 2.0  # seconds between an instance's `alive` writes
SCAN = 5.0  # seconds between looks for lost executions
KEEP = 2 * 3600  # seconds a record is kept at most (beyond the longest execution)
LOST = ExecutionError(
    name="ExecutionLost",
    value="the service running this execution stopped during it; the sandbox's agent "
    "stopped the execution",
    traceback="",
)

log = structlog.get_logger()
Booking = Callable[[ExecutionType, str, ExecutionResult], None]


class InFlight:
    """This instance's records of its running executions, and the ending of others' lost
    ones. ``book`` queues a lost execution's summary row (`ExecutionStore.record`)."""

    def __init__(self, connection: NatsClient, bus: Bus, book: Booking, lost_after: float) -> None:
        self._lost_after = lost_after
        self._js = connection.jetstream()
        self._bus = bus
        self._book = book
        self.instance = secrets.token_hex(6)
        self._kv: KeyValue | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._watcher: KeyValue.KeyWatcher | None = None
        self._following: asyncio.Task[None] | None = None
        self._view: dict[str, KeyValue.Entry] = {}  # the bucket as the watch last showed it
        self._up_since = float("inf")  # since when this instance's own writes succeed

    async def start(self) -> None:
        self._kv = await self._js.create_key_value(bucket=BUCKET, history=1, ttl=KEEP)
        await self._alive()
        await self._watch()
        self._tasks = [
            asyncio.create_task(self._every(HEARTBEAT, self._alive)),
            asyncio.create_task(self._every(SCAN, self.end_lost)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._unwatch()

    async def _watch(self) -> None:
        """One watch of the bucket, kept in `_view`, until it falls behind (a consumer
        per scan would pile up: each lingers for minutes after it is stopped)."""
        await self._unwatch()
        self._view = {}
        self._watcher = await self._bucket().watchall()
        self._following = asyncio.create_task(self._follow(self._watcher))

    async def _unwatch(self) -> None:
        if self._following is not None:
            self._following.cancel()
        if self._watcher is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._watcher.stop()  # type: ignore[no-untyped-call]

    async def _follow(self, watcher: KeyValue.KeyWatcher) -> None:
        async for entry in watcher:
            if entry is None:  # the end of what the bucket held at the start
                continue
            if entry.operation is None:  # a value (a deletion or purge names itself)
                self._view[entry.key] = entry
            else:
                self._view.pop(entry.key, None)

    async def record(self, started: ExecutionEvent) -> None:
        """Record an execution still running, by its `started` event (its end calls
        `done`)."""
        key = f"run.{self.instance}.{started.sandbox_id}.{started.execution_id}"
        with contextlib.suppress(nats.errors.Error, nats.js.errors.Error):
            await self._bucket().put(key, started.model_dump_json(by_alias=True).encode())

    async def done(self, sandbox_id: str, execution_id: str) -> None:
        key = f"run.{self.instance}.{sandbox_id}.{execution_id}"
        with contextlib.suppress(nats.errors.Error, nats.js.errors.Error):
            await self._bucket().delete(key)

    async def end_lost(self) -> None:
        """End the executions of instances no longer alive (each by one instance)."""
        if time.time() - self._up_since < self._lost_after:
            return
        kv = self._bucket()
        alive: dict[str, float] = {}
        runs = []
        for entry in list(self._view.values()):
            kind, _, rest = entry.key.partition(".")
            if kind == "alive":
                alive[rest] = float(entry.value or b"0")
            elif kind == "run":
                runs.append(entry)
        now = time.time()
        if now - alive.get(self.instance, 0.0) > 3 * HEARTBEAT:
            await self._watch()  # the view does not show this instance's own last writes:
            return  # it fell behind (the bus restarted, say), so it shows no one's
        for entry in runs:
            instance = entry.key.split(".")[1]
            if instance == self.instance or now - alive.get(instance, 0.0) < self._lost_after:
                continue  # its own (perhaps frozen a while) are never lost
            try:
                await kv.delete(entry.key, last=entry.revision)  # the claim
            except nats.js.errors.KeyWrongLastSequenceError:
                continue  # another instance claimed it (or the view was behind)
            await self._end(ExecutionEvent.model_validate_json(entry.value or b"{}"))

    async def _end(self, started: ExecutionEvent) -> None:
        result = bare_result(started, LOST, started_at=started.started_at)
        log.warning(
            "execution_lost", sandbox_id=started.sandbox_id, execution_id=started.execution_id
        )
        await self._end_stream(started, result)
        self._book(started.type, started.user_id, result)
        event = started.model_copy(
            update={
                "status": result.status,
                "exit_code": result.exit_code,
                "duration_ms": result.duration_ms,
            }
        )
        subject = subjects.exec_event(
            started.sandbox_id, started.execution_id, ExecEventName.FAILED
        )
        await self._bus.event(subject, event)

    async def _end_stream(self, started: ExecutionEvent, result: ExecutionResult) -> None:
        """The terminal marker after the last message on the execution's output subject,
        if it has any (a synchronous execution has none) and it is not there already."""
        subject = subjects.output(started.sandbox_id, started.execution_id)
        try:
            last = await self._js.get_last_msg(subjects.OUTPUT_STREAM, subject)
        except nats.js.errors.NotFoundError:
            return
        message = json.loads(last.data or b"{}")
        if message.get("kind") == "ended":
            return
        marker = EndedMarker(seq=int(message.get("seq", 0)) + 1, result=result)
        await self._js.publish(subject, marker.model_dump_json(by_alias=True).encode())

    async def _alive(self) -> None:
        try:
            await self._bucket().put(f"alive.{self.instance}", str(time.time()).encode())
        except (nats.errors.Error, nats.js.errors.Error):
            self._up_since = float("inf")
            raise
        self._up_since = min(self._up_since, time.time())

    async def _every(self, seconds: float, work: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await work()
            except Exception as exc:  # the bus may be down for a while: try again later
                log.warning("inflight_failed", error=str(exc))

    def _bucket(self) -> KeyValue:
        if self._kv is None:
            raise RuntimeError("InFlight.start() first")
        return self._kv
