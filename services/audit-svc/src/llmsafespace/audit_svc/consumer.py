"""The durable JetStream consumer: every event, written once, acknowledged after the write.

One pull consumer (`subjects.AUDIT_CONSUMER`) is shared by every replica, so each event
goes to one of them; an event whose write or ack is lost (crash, restart) is delivered
again after `ack_wait` and the table's primary key makes the second write a no-op."""

import asyncio
import contextlib
from datetime import UTC, datetime

import nats.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from prometheus_client import Counter

from llmsafespace.contracts import AuditEvent, subjects

from .records import audit_event
from .store import AuditStore

log = structlog.get_logger()

RECORDED = Counter("audit_events_recorded_total", "Events written to the audit trail", ["kind"])
REDELIVERED = Counter(
    "audit_events_redelivered_total", "Events delivered again that were already recorded"
)
FAILED_WRITES = Counter("audit_write_failures_total", "Batches the database refused")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RETRY_SECONDS = 1.0


class AuditConsumer:
    def __init__(
        self,
        connection: NatsClient,
        store: AuditStore,
        *,
        batch_size: int,
        ack_wait: float,
        linger: float,
    ) -> None:
        self._js = connection.jetstream()
        self._store = store
        self._batch_size = batch_size
        self._ack_wait = ack_wait
        self._linger = linger
        self._task: asyncio.Task[None] | None = None
        self._subscription: JetStreamContext.PullSubscription | None = None
        self._stream_created = _EPOCH

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        info = await self._js.stream_info(subjects.EVENTS_STREAM)
        self._stream_created = info.created or _EPOCH
        subscription = await self._js.pull_subscribe(
            subjects.EVENTS_ALL,
            durable=subjects.AUDIT_CONSUMER,
            stream=subjects.EVENTS_STREAM,
            config=ConsumerConfig(
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self._ack_wait,
                max_ack_pending=10 * self._batch_size,
            ),
        )
        self._subscription = subscription
        self._task = asyncio.create_task(self._run(subscription), name="audit-consumer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._subscription is not None:
            # A pull subscription left open stalls the connection's drain at shutdown (its
            # queue never empties without a fetch), for the whole drain timeout.
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
            self._subscription = None

    async def _run(self, subscription: JetStreamContext.PullSubscription) -> None:
        while True:
            try:
                messages = await subscription.fetch(self._batch_size, timeout=1)
            except nats.errors.TimeoutError:
                continue
            except Exception as exc:
                log.warning("audit_fetch_failed", error=str(exc))
                await asyncio.sleep(_RETRY_SECONDS)
                continue
            await self._record(messages)
            if len(messages) < self._batch_size:
                # Events arrive a few per execution: waiting a moment lets the next fetch
                # and insert carry many of them instead of one or two.
                await asyncio.sleep(self._linger)

    async def _record(self, messages: list[Msg]) -> None:
        events = [self._event(message) for message in messages]
        try:
            new = await self._store.record(self._stream_created, events)
        except Exception as exc:  # unacknowledged: JetStream delivers them again
            FAILED_WRITES.inc()
            log.error("audit_write_failed", events=len(events), error=str(exc))
            await asyncio.sleep(_RETRY_SECONDS)
            return
        for event in events:
            RECORDED.labels(kind=event.kind.value).inc()
        if new < len(events):
            REDELIVERED.inc(len(events) - new)
        for message in messages:
            try:
                await message.ack()
            except Exception as exc:  # delivered again later, then skipped by the key
                log.warning("audit_ack_failed", error=str(exc))

    @staticmethod
    def _event(message: Msg) -> AuditEvent:
        metadata = message.metadata
        return audit_event(
            message.subject, message.data, metadata.sequence.stream, metadata.timestamp
        )
