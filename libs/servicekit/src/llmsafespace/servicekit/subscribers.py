"""Subscribers declared from the command descriptors in `contracts.commands`.

`@handles(router, commands.X)` declares the handler answering `X.subject` in `X.queue`,
and its type says the handler must take `X.request` and return `X.reply`: the handler
and every `Bus.request(commands.X, ...)` read the same descriptor, so they cannot
disagree without mypy saying so. Services answer commands over plain subscriptions
(`commands.CommandServer`); `hears` and `router.subscriber` are FastStream's.
"""

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from faststream.nats import NatsBroker, NatsRouter

from llmsafespace.contracts import Broadcast, Command, Contract

from .commands import Answer

RequestT = TypeVar("RequestT", bound=Contract)
ReplyT = TypeVar("ReplyT", bound=Contract)
Handler = Callable[[RequestT], Awaitable[ReplyT]]
Listener = Callable[[RequestT], Awaitable[None]]


class Router(NatsRouter):
    """A service's subscribers: FastStream's for events and broadcasts, and the
    commands it answers (`answers`), which `Startup.serve` subscribes itself."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[Answer] = []


def handles(
    router: Router,
    command: Command[RequestT, ReplyT],
    *,
    max_workers: int | None = None,
    admit: Callable[[RequestT], Callable[[], None]] | None = None,
) -> Callable[[Handler[RequestT, ReplyT]], Handler[RequestT, ReplyT]]:
    """Declare the decorated function as the handler answering `command`, at most
    `max_workers` at once; `admit` may refuse a request before it waits for one
    (`commands.Admit`)."""

    def declare(handler: Handler[RequestT, ReplyT]) -> Handler[RequestT, ReplyT]:
        router.answers.append(Answer(command, handler, max_workers, admit))
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


def include_commands(broker: NatsBroker, router: Router) -> None:
    """Include `router` in `broker` with its commands as FastStream subscribers, for what
    sees only FastStream's: unit tests on its in-memory test broker (which has no
    connection to subscribe on) and the AsyncAPI document (`scripts/asyncapi.py`)."""
    for answer in router.answers:
        command = answer.command
        subscriber = router.subscriber(
            command.subject, queue=command.queue, max_workers=answer.max_workers
        )
        subscriber(answer.handler if answer.admit is None else _admitted(answer))
    broker.include_router(router)


def _admitted(answer: Answer) -> Callable[[Any], Awaitable[Any]]:
    """`answer.handler` behind `answer.admit` (here once it has a worker: FastStream
    decodes the request in the worker)."""
    admit, handler = answer.admit, answer.handler
    assert admit is not None

    # FastStream reads the request's type from the handler's signature, and passes the
    # request by that parameter's name.
    @functools.wraps(handler)
    async def admitted(*args: Any, **kwargs: Any) -> Any:
        (request,) = (*args, *kwargs.values())
        release = admit(request)
        try:
            return await handler(*args, **kwargs)
        finally:
            release()

    return admitted
