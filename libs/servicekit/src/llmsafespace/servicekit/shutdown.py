"""Graceful stop of a service's broker: take no new messages, finish the ones taken.

FastStream's own `broker.stop()` first marks every subscriber as not running — from then
on a message still queued for a handler is dropped without a reply, so its caller waits
for its whole timeout — and after its graceful timeout cancels whatever still runs. So
the services drain first and stop the broker after.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence

import structlog
from faststream.nats import NatsBroker
from nats.aio.subscription import Subscription

from .commands import CommandServer

log = structlog.get_logger()

DRAIN_TIMEOUT = 20.0  # seconds in-flight handlers get to finish before the broker stops
_POLL = 0.05
# Where FastStream's NATS subscribers keep their nats-py subscriptions.
_SUBSCRIPTION_ATTRIBUTES = ("subscription", "_fetch_sub")


async def stop_gracefully(
    broker: NatsBroker,
    commands: CommandServer,
    work: Sequence[Callable[[], Awaitable[None]]] = (),
    timeout: float = DRAIN_TIMEOUT,
) -> None:
    """Drain `broker` and `commands`, let the service's own `work` finish, then stop
    the broker.

    Each subscription is drained: the server stops sending to it (a queue group's next
    request goes to another replica, or meets "no responders" and becomes a 503 at once)
    and every message it already holds is handed to its handler. Then this waits, up to
    `timeout` seconds, until no handler runs. Then each of `work` is awaited in order:
    what the service runs after its replies (a streamed execution, an install) still
    publishes its output and its terminal marker over the open connection. Only then
    does the broker stop.
    """
    subscribers = list(broker.subscribers)
    try:
        await asyncio.gather(
            *(_drain_subscriptions(sub) for sub in subscribers), commands.drain(timeout)
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(_busy(sub) for sub in subscribers):
            if loop.time() >= deadline:
                log.warning("drain_timed_out", timeout=timeout)
                break
            await asyncio.sleep(_POLL)
    except Exception as exc:  # a lost connection: nothing left to drain
        log.warning("drain_failed", error=str(exc))
    for drain in work:
        await drain()
    await broker.stop()


async def _drain_subscriptions(subscriber: object) -> None:
    for attribute in _SUBSCRIPTION_ATTRIBUTES:
        subscription = getattr(subscriber, attribute, None)
        if isinstance(subscription, Subscription):
            await subscription.drain()  # type: ignore[no-untyped-call]
            # Drained subscriptions are closed: FastStream must not unsubscribe them again.
            setattr(subscriber, attribute, None)


def _busy(subscriber: object) -> bool:
    """A handler runs, or a message waits in a concurrent subscriber's queue for one."""
    lock = getattr(subscriber, "lock", None)
    if lock is not None and not getattr(lock, "empty", True):
        return True
    limiter = getattr(subscriber, "limiter", None)
    max_workers = getattr(subscriber, "max_workers", None)
    if limiter is not None and max_workers is not None and limiter.value < max_workers:
        return True
    queue = getattr(subscriber, "receive_stream", None)
    return queue is not None and queue.statistics().current_buffer_used > 0
