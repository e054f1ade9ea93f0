"""Following one execution's output subject, as client-ready messages.

An execution started here is followed live: a plain subscription, in place with the
server before the execution starts, sees every message without a JetStream consumer (one
per execution would cost an API round trip on the hot path, and their number is
limited). A WebSocket session holds one subscription for its sandbox's executions
(`Outputs`) and hands each execution's messages to its follower, so an execution costs
no subscribe, flush and unsubscribe round of its own; the session's executions are
started with `Bus.start`, and a refusal to start one (its error envelope, or the
server's "no responders") reaches the follower the same way, through a second
subscription on the session's own inbox. Should a follower lose messages (a
slow client overflowing its buffer shows as a gap in `seq`, or as a silence while the
stream holds more), it switches to a replay. Any gateway replica can also replay any
execution from JetStream (an ordered consumer: no gap, no duplicate), so a client that
lost its connection resumes after its last `seq`.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Protocol

import nats.errors
from nats.aio.client import NO_RESPONDERS_STATUS
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DeliverPolicy, Header
from nats.js.errors import NotFoundError
from pydantic import TypeAdapter

from llmsafespace.contracts import (
    DisplayChunk,
    EndedMarker,
    ErrorCode,
    ErrorEnvelope,
    ExecutionStatus,
    OutputChunk,
    OutputMessage,
    ServerDisplay,
    ServerError,
    ServerExecutionCancelled,
    ServerExecutionComplete,
    ServerExecutionStart,
    ServerMessage,
    ServerOutput,
    StartedMarker,
    subjects,
)
from llmsafespace.contracts.execution import MAX_TIMEOUT_SECONDS

GRACE = 15.0  # seconds past an execution's own timeout before it is presumed lost
PENDING_BYTES = 8 * 1024 * 1024  # per follower; past it messages are lost, then replayed
CHECK_EVERY = 2.0  # seconds of silence after which a live follower asks the stream
_MESSAGE: TypeAdapter[OutputMessage] = TypeAdapter(OutputMessage)
# What a terminal message carries of the result (its output came as messages before it).
_END_FIELDS = tuple(
    name
    for name in ServerExecutionComplete.model_fields
    if name not in {"type", "execution_id", "seq", "timestamp"}
)


def now_ms() -> int:
    return int(time.time() * 1000)


def encode(message: ServerMessage) -> str:
    """A server message as the JSON text a client receives."""
    return message.model_dump_json(by_alias=True, exclude_none=True)


def _client(execution_id: str, message: OutputMessage) -> ServerMessage | None:
    """What a client sees of one bus message (None: nothing). The bus message was
    validated once on arrival; the client's is built from its fields without a second
    validation."""
    if isinstance(message, OutputChunk):
        return ServerOutput.model_construct(
            execution_id=execution_id,
            seq=message.seq,
            stream=message.stream,
            content=message.content,
            timestamp=message.timestamp,
        )
    if isinstance(message, StartedMarker):
        started = int(message.started_at.timestamp() * 1000)
        return ServerExecutionStart.model_construct(execution_id=execution_id, timestamp=started)
    if isinstance(message, DisplayChunk):
        return ServerDisplay.model_construct(
            execution_id=execution_id,
            seq=message.seq,
            data=message.data,
            is_main_result=message.is_main_result,
            truncated=message.truncated,
            timestamp=message.timestamp,
        )
    if isinstance(message, EndedMarker):
        result = message.result
        end = (
            ServerExecutionCancelled
            if result.status is ExecutionStatus.CANCELLED
            else ServerExecutionComplete
        )
        return end.model_construct(
            execution_id=execution_id,
            seq=message.seq,
            timestamp=int(result.completed_at.timestamp() * 1000),
            **{name: getattr(result, name) for name in _END_FIELDS},
        )
    return None  # truncation shows as `outputTruncated` on the terminal message


def _refused(execution_id: str, message: Msg) -> ServerError:
    """What a client sees of a refusal to start its execution."""
    if message.headers and message.headers.get(Header.STATUS) == NO_RESPONDERS_STATUS:
        code, text = (
            ErrorCode.SERVICE_UNAVAILABLE.value,
            f"no service answers {subjects.EXEC_START}",
        )
    else:
        error = ErrorEnvelope.model_validate_json(message.data).error
        return ServerError(
            code=error.code.value,
            message=error.message,
            execution_id=execution_id,
            details=error.details,
            timestamp=now_ms(),
        )
    return ServerError(code=code, message=text, execution_id=execution_id, timestamp=now_ms())


def lost(execution_id: str) -> ServerError:
    return ServerError(
        code="execution_failed",
        message="the execution stopped reporting (its service may have failed)",
        execution_id=execution_id,
        timestamp=now_ms(),
    )


class Feed(Protocol):
    """Where a follower reads its execution's messages: a subscription of its own, or
    its share of a session's (`Outputs.feed`)."""

    async def next_msg(self, timeout: float) -> Msg: ...

    async def unsubscribe(self) -> None: ...


class SharedFeed:
    """One execution's messages out of a session's subscription, at most PENDING_BYTES
    waiting (past it they are dropped: the follower sees the gap and replays)."""

    def __init__(self, outputs: "Outputs", execution_id: str) -> None:
        self._outputs = outputs
        self._execution_id = execution_id
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._bytes = 0

    def put(self, message: Msg) -> None:
        if self._bytes + len(message.data) > PENDING_BYTES:
            return
        self._bytes += len(message.data)
        self._queue.put_nowait(message)

    async def next_msg(self, timeout: float) -> Msg:
        try:
            message = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            try:  # not wait_for: it wraps the get in a task of its own, on every message
                async with asyncio.timeout(timeout):
                    message = await self._queue.get()
            except TimeoutError:
                raise nats.errors.TimeoutError from None
        self._bytes -= len(message.data)
        return message

    async def unsubscribe(self) -> None:
        self._outputs.release(self._execution_id)


class Outputs:
    """One subscription to every execution's output subject in one sandbox, shared by
    the executions a session starts, and one to the refusals to start them."""

    def __init__(
        self, subscriptions: list[Subscription], feeds: dict[str, SharedFeed], inbox: str
    ) -> None:
        self._subs = subscriptions
        self._feeds = feeds
        self._inbox = inbox

    @classmethod
    async def open(cls, connection: NatsClient, sandbox_id: str) -> "Outputs":
        """Returns once the server has the subscriptions."""
        feeds: dict[str, SharedFeed] = {}

        async def route(message: Msg) -> None:
            feed = feeds.get(message.subject.rpartition(".")[2])
            if feed is not None:
                feed.put(message)

        output = await connection.subscribe(
            subjects.output(sandbox_id, "*"), cb=route, pending_bytes_limit=PENDING_BYTES
        )
        inbox = connection.new_inbox()
        refusals = await connection.subscribe(f"{inbox}.*", cb=route)
        await connection.flush()
        return cls([output, refusals], feeds, inbox)

    def refusals_to(self, execution_id: str) -> str:
        """Where a refusal to start the execution is to be sent (`Bus.start`)."""
        return f"{self._inbox}.{execution_id}"

    def feed(self, execution_id: str) -> SharedFeed:
        """The execution's messages from now on (take it before starting the execution)."""
        feed = self._feeds[execution_id] = SharedFeed(self, execution_id)
        return feed

    def release(self, execution_id: str) -> None:
        self._feeds.pop(execution_id, None)

    async def close(self) -> None:
        with contextlib.suppress(
            nats.errors.ConnectionClosedError, nats.errors.BadSubscriptionError
        ):
            for subscription in self._subs:
                await subscription.unsubscribe()


class Follower:
    """One execution's messages in order, each once: live or replayed (see the module)."""

    def __init__(
        self,
        connection: NatsClient,
        sandbox_id: str,
        execution_id: str,
        grace: float,
        feed: Feed,
        replaying: bool,
    ) -> None:
        self._nc = connection
        self._subject = subjects.output(sandbox_id, execution_id)
        self.execution_id = execution_id
        self._grace = grace
        self._sub: Feed = feed
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
    def shared(
        cls,
        connection: NatsClient,
        outputs: Outputs,
        sandbox_id: str,
        execution_id: str,
        grace: float,
    ) -> "Follower":
        """Follow live through a session's subscription (take it before starting)."""
        feed = outputs.feed(execution_id)
        return cls(connection, sandbox_id, execution_id, grace, feed, replaying=False)

    @classmethod
    async def replay(
        cls, connection: NatsClient, sandbox_id: str, execution_id: str, grace: float = GRACE
    ) -> "Follower":
        """Everything the stream holds of the execution, then what follows."""
        subscription = await _ordered(connection, subjects.output(sandbox_id, execution_id))
        return cls(connection, sandbox_id, execution_id, grace, subscription, replaying=True)

    async def messages(self, after_seq: int, wait: float) -> AsyncIterator[ServerMessage]:
        """Client messages with `seq` > `after_seq`, ending with the terminal one, which
        is sent even when its `seq` is not past `after_seq` (a client resuming at or past
        the end learns that it ended). If the execution does not start within `wait`
        seconds, or does not end within its own timeout plus a grace period, the last
        message is an `execution_failed` error. A replay that finds the stream has dropped
        the execution's first messages starts at the oldest one kept, and waits for the
        longest timeout any execution may have."""
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
            if raw.subject != self._subject:  # a refusal: it never started (see `Outputs`)
                yield _refused(self.execution_id, raw)
                return
            message = _MESSAGE.validate_json(raw.data)
            if message.seq <= last:
                continue  # a replay repeats what the live subscription passed on
            if message.seq > last + 1 and not self._replaying:
                await self._switch_to_replay()
                continue
            if last == 0 and message.seq > 1:
                # The stream no longer holds the start (it was full, or the start is past
                # its age), so the execution's timeout is unknown: allow the longest.
                deadline = time.monotonic() + MAX_TIMEOUT_SECONDS + self._grace
            last = message.seq
            if isinstance(message, StartedMarker):
                started = message.started_at.timestamp()
                left = started + message.timeout + self._grace - time.time()
                deadline = time.monotonic() + left
            ended = isinstance(message, EndedMarker)
            if (message.seq > after_seq or ended) and (
                reply := _client(self.execution_id, message)
            ):
                yield reply
            if ended:
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
