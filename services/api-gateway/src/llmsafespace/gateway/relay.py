"""Following one execution's output subject, as client-ready messages.

An execution started here is followed live: a plain subscription to its subject, in place
with the server before the execution starts, sees every message without a JetStream
consumer (one per execution would cost an API round trip on the hot path, and their
number is limited). Should it lose messages (a slow client overflowing its buffer shows
as a gap in `seq`, or as a silence while the stream holds more), it switches to a replay.
Any gateway replica can also replay any execution from JetStream (an ordered consumer:
no gap, no duplicate), so a client that lost its connection resumes after its last `seq`.
"""

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import TypeAdapter

from llmsafespace.contracts import (
    DisplayChunk,
    EndedMarker,
    ExecutionStatus,
    OutputChunk,
    OutputMessage,
    StartedMarker,
    subjects,
)

GRACE = 15.0  # seconds past an execution's own timeout before it is presumed lost
PENDING_BYTES = 8 * 1024 * 1024  # per follower; past it messages are lost, then replayed
CHECK_EVERY = 2.0  # seconds of silence after which a live follower asks the stream
_MESSAGE: TypeAdapter[OutputMessage] = TypeAdapter(OutputMessage)
ClientMessage = dict[str, Any]


def now_ms() -> int:
    return int(time.time() * 1000)


def _client(execution_id: str, message: OutputMessage) -> ClientMessage | None:
    """What a client sees of one bus message (None: nothing)."""
    if isinstance(message, StartedMarker):
        started = int(message.started_at.timestamp() * 1000)
        return {"type": "execution_start", "executionId": execution_id, "timestamp": started}
    if isinstance(message, OutputChunk | DisplayChunk):
        chunk = message.wire()
        del chunk["kind"]
        return {"type": message.kind, "executionId": execution_id, **chunk}
    if isinstance(message, EndedMarker):
        result = message.result.wire()
        kind = (
            "execution_cancelled"
            if message.result.status is ExecutionStatus.CANCELLED
            else "execution_complete"
        )
        for key in ("stdout", "stderr", "results", "executionId", "sandboxId"):
            result.pop(key, None)
        ended = int(message.result.completed_at.timestamp() * 1000)
        return {
            "type": kind,
            "executionId": execution_id,
            "seq": message.seq,
            "timestamp": ended,
            **result,
        }
    return None  # truncation shows as `outputTruncated` on the terminal message


def lost(execution_id: str) -> ClientMessage:
    return {
        "type": "error",
        "code": "execution_failed",
        "message": "the execution stopped reporting (its service may have failed)",
        "executionId": execution_id,
    }


class Follower:
    """One execution's messages in order, each once: live or replayed (see the module)."""

    def __init__(
        self,
        connection: NatsClient,
        sandbox_id: str,
        execution_id: str,
        grace: float,
        subscription: Subscription,
        replaying: bool,
    ) -> None:
        self._nc = connection
        self._subject = subjects.output(sandbox_id, execution_id)
        self.execution_id = execution_id
        self._grace = grace
        self._sub = subscription
        self._replaying = replaying

    @classmethod
    async def live(
        cls, connection: NatsClient, sandbox_id: str, execution_id: str, grace: float = GRACE
    ) -> "Follower":
        """Open before starting the execution: returns once the server has the subscription."""
        subject = subjects.output(sandbox_id, execution_id)
        subscription = await connection.subscribe(subject, pending_bytes_limit=PENDING_BYTES)
        await connection.flush()
        return cls(connection, sandbox_id, execution_id, grace, subscription, replaying=False)

    @classmethod
    async def replay(
        cls, connection: NatsClient, sandbox_id: str, execution_id: str, grace: float = GRACE
    ) -> "Follower":
        """Everything the stream holds of the execution, then what follows."""
        subscription = await _ordered(connection, subjects.output(sandbox_id, execution_id))
        return cls(connection, sandbox_id, execution_id, grace, subscription, replaying=True)

    async def messages(self, after_seq: int, wait: float) -> AsyncIterator[ClientMessage]:
        """Client messages with `seq` > `after_seq`, ending with the terminal one. If the
        execution does not start within `wait` seconds, or does not end within its own
        timeout plus a grace period, the last message is an `execution_failed` error."""
        deadline = time.monotonic() + wait
        last = 0  # the highest `seq` passed through
        while True:
            left = deadline - time.monotonic()
            try:
                raw = await self._sub.next_msg(
                    timeout=max(0.01, left if self._replaying else min(left, CHECK_EVERY))
                )
            except nats.errors.TimeoutError:
                if time.monotonic() >= deadline:
                    yield lost(self.execution_id)
                    return
                if await self._stored_beyond(last):
                    await self._switch_to_replay()
                continue
            message = _MESSAGE.validate_json(raw.data)
            if message.seq <= last:
                continue  # a replay repeats what the live subscription passed on
            if message.seq > last + 1 and not self._replaying:
                await self._switch_to_replay()
                continue
            last = message.seq
            if isinstance(message, StartedMarker):
                started = message.started_at.timestamp()
                left = started + message.timeout + self._grace - time.time()
                deadline = time.monotonic() + left
            if message.seq > after_seq and (reply := _client(self.execution_id, message)):
                yield reply
            if isinstance(message, EndedMarker):
                return

    async def _stored_beyond(self, seq: int) -> bool:
        """Whether the stream holds a later message than `seq` (the live one lost some)."""
        if self._replaying:
            return False
        try:
            stored = await self._nc.jetstream().get_last_msg(subjects.OUTPUT_STREAM, self._subject)
        except (NotFoundError, nats.errors.Error):
            return False
        return stored.data is not None and _MESSAGE.validate_json(stored.data).seq > seq

    async def _switch_to_replay(self) -> None:
        await self.close()
        self._sub = await _ordered(self._nc, self._subject)
        self._replaying = True

    async def close(self) -> None:
        with contextlib.suppress(
            nats.errors.ConnectionClosedError, nats.errors.BadSubscriptionError
        ):
            await self._sub.unsubscribe()


async def _ordered(connection: NatsClient, subject: str) -> Subscription:
    js = connection.jetstream()
    return await js.subscribe(
        subject,
        stream=subjects.OUTPUT_STREAM,
        ordered_consumer=True,
        deliver_policy=DeliverPolicy.ALL,
        pending_bytes_limit=PENDING_BYTES,
    )


async def exists(connection: NatsClient, sandbox_id: str, execution_id: str) -> bool:
    """Whether the execution has any message in the stream (for `resume`)."""
    try:
        await connection.jetstream().get_last_msg(
            subjects.OUTPUT_STREAM, subjects.output(sandbox_id, execution_id)
        )
    except NotFoundError:
        return False
    return True
