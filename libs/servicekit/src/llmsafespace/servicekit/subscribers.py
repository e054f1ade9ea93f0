"""Subscribers declared from the command descriptors in `contracts.commands`.

`@handles(router, commands.X)` subscribes the handler to `X.subject` in `X.queue`, and
its type says the handler must take `X.request` and return `X.reply`: the handler and
every `Bus.request(commands.X, ...)` read the same descriptor, so they cannot disagree
without mypy saying so.
"""

from collections.abc import Awaitable, Callable
from typing import TypeVar

from faststream.nats import NatsRouter

from llmsafespace.contracts import Broadcast, Command, Contract

RequestT = TypeVar("RequestT", bound=Contract)
ReplyT = TypeVar("ReplyT", bound=Contract)
Handler = Callable[[RequestT], Awaitable[ReplyT]]
Listener = Callable[[RequestT], Awaitable[None]]


def handles(
    router: NatsRouter, command: Command[RequestT, ReplyT], *, max_workers: int | None = None
) -> Callable[[Handler[RequestT, ReplyT]], Handler[RequestT, ReplyT]]:
    """Declare the decorated function as the subscriber answering `command`."""

    def declare(handler: Handler[RequestT, ReplyT]) -> Handler[RequestT, ReplyT]:
        router.subscriber(command.subject, queue=command.queue, max_workers=max_workers)(handler)
        return handler

    return declare


def hears(
    router: NatsRouter, broadcast: Broadcast[RequestT]
) -> Callable[[Listener[RequestT]], Listener[RequestT]]:
    """Declare the decorated function as this instance's listener to `broadcast`."""

    def declare(listener: Listener[RequestT]) -> Listener[RequestT]:
        router.subscriber(broadcast.subject)(listener)
        return listener

    return declare
