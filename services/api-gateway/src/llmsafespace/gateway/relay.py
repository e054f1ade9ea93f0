"""Following one execution's output subject in JetStream, as client-ready messages.

Any gateway replica can follow any execution: the subject is replayed from its first
message (an ordered consumer: no gap, no duplicate, it resets itself after a slow-consumer
drop), so a client that lost its connection resumes after its last `seq`.
"""

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import nats.errors
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError
from pydantic import TypeAdapter

from llmsafespace.contracts import (
    EndedMarker,
    ExecutionStatus,
    OutputChunk,
    OutputMessage,
    StartedMarker,
    subjects,
)

GRACE = 15.0  # seconds past an execution's own timeout before it is presumed lost
PENDING_BYTES = 8 * 1024 * 1024  # per follower; past it the consumer resets and replays
_MESSAGE: TypeAdapter[OutputMessage] = TypeAdapter(OutputMessage)
ClientMessage = dict[str, Any]


def now_ms() -> int:
    return int(time.time() * 1000)


def _client(execution_id: str, message: OutputMessage) -> ClientMessage | None:
    """What a client sees of one bus message (None: nothing)."""
    if isinstance(message, StartedMarker):
        started = int(message.started_at.timestamp() * 1000)
        return {"type": "execution_start", "executionId": execution_id, "timestamp": started}
    if isinstance(message, OutputChunk):
        chunk = message.wire()
        del chunk["kind"]
        return {"type": "output", "executionId": execution_id, **chunk}
    if isinstance(message, EndedMarker):
        result = message.result.wire()
        kind = (
            "execution_cancelled"
            if message.result.status is ExecutionStatus.CANCELLED
            else "execution_complete"
        )
        for key in ("stdout", "stderr", "executionId", "sandboxId"):
            result.pop(key, None)
        return {"type": kind, "executionId": execution_id, "seq": message.seq, **result}
    return None  # truncation shows as `outputTruncated` on the terminal message


def lost(execution_id: str) -> ClientMessage:
    return {
        "type": "error",
        "code": "execution_failed",
        "message": "the execution stopped reporting (its service may have failed)",
        "executionId": execution_id,
    }


class Follower:
    """A subscription to one execution's messages, opened before the execution starts."""

    def __init__(self, subscription: Subscription, execution_id: str, grace: float) -> None:
        self._sub = subscription
        self.execution_id = execution_id
        self._grace = grace

    @classmethod
    async def open(
        cls, js: JetStreamContext, sandbox_id: str, execution_id: str, grace: float = GRACE
    ) -> "Follower":
        subscription = await js.subscribe(
            subjects.output(sandbox_id, execution_id),
            stream=subjects.OUTPUT_STREAM,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
            pending_bytes_limit=PENDING_BYTES,
        )
        return cls(subscription, execution_id, grace)

    async def messages(self, after_seq: int, wait: float) -> AsyncIterator[ClientMessage]:
        """Client messages with `seq` > `after_seq`, ending with the terminal one. If the
        execution does not start within `wait` seconds, or does not end within its own
        timeout plus a grace period, the last message is an `execution_failed` error."""
        deadline = time.monotonic() + wait
        while True:
            try:
                raw = await self._sub.next_msg(timeout=max(0.01, deadline - time.monotonic()))
            except nats.errors.TimeoutError:
                yield lost(self.execution_id)
                return
            message = _MESSAGE.validate_json(raw.data)
            if isinstance(message, StartedMarker):
                started = message.started_at.timestamp()
                left = started + message.timeout + self._grace - time.time()
                deadline = time.monotonic() + left
            if message.seq > after_seq and (reply := _client(self.execution_id, message)):
                yield reply
            if isinstance(message, EndedMarker):
                return

    async def close(self) -> None:
        with contextlib.suppress(
            nats.errors.ConnectionClosedError, nats.errors.BadSubscriptionError
        ):
            await self._sub.unsubscribe()


async def exists(js: JetStreamContext, sandbox_id: str, execution_id: str) -> bool:
    """Whether the execution has any message in the stream (for `resume`)."""
    try:
        await js.get_last_msg(subjects.OUTPUT_STREAM, subjects.output(sandbox_id, execution_id))
    except NotFoundError:
        return False
    return True
