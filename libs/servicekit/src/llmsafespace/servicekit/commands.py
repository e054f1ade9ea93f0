"""Commands answered over plain nats-py subscriptions.

A command declared with `handles` is answered here, not by FastStream: FastStream's
consume path (its middlewares, the dependency model validating the body, the reply's
publisher, workers fed through memory streams) cost about 0.3 ms of CPU per request on
this project's 2-core machine, against 0.1 ms for a subscription that decodes the body
once (`model_validate_json`), calls the handler and publishes its reply. Every
execution crosses one command, so that difference was a tenth of the server's CPU per
execution. What FastStream's middlewares did is done the same way here: the request id
a command carries is bound to the log context, and every exception is answered with
its error envelope (`error_reply`); so is a reply larger than the bus carries, which
nats-py refuses to publish.

Events and broadcasts (`hears`) stay FastStream subscribers, and unit tests answer
commands on FastStream's in-memory test broker (`include_commands`).
"""

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from llmsafespace.contracts import Command, ErrorCode, ServiceError

from .bus import REFUSALS_ONLY, REPLY_HEADER, REQUEST_ID_HEADER, error_reply
from .keepalive import KEEPALIVE_HEADER, Working

log = structlog.get_logger()


Admit = Callable[[Any], Callable[[], None]]
"""Sees a decoded request before it waits for a worker: raises (a `ServiceError`) to
refuse it at once, else returns what to call once the request has been answered."""


@dataclass(frozen=True)
class Answer:
    """`handler` answers `command`, running at most `max_workers` at once (one at a time
    when None); `admit`, when given, may refuse a request before it takes a worker (a
    caller past its share of them: see `Admit`)."""

    command: Command[Any, Any]
    handler: Callable[[Any], Awaitable[Any]]
    max_workers: int | None
    admit: Admit | None = None


class CommandServer:
    """One subscription per answered command, in its queue group; each request is
    answered in a task of its own, at most `max_workers` at once per command."""

    def __init__(self, connection: NatsClient) -> None:
        self._nc = connection
        self._subscriptions: list[Subscription] = []
        self._running: set[asyncio.Task[None]] = set()

    async def start(self, answers: Sequence[Answer]) -> None:
        for answer in answers:
            self._subscriptions.append(
                await self._nc.subscribe(
                    answer.command.subject, queue=answer.command.queue, cb=self._taker(answer)
                )
            )

    async def drain(self, timeout: float) -> None:
        """Take no new request (the server sends the next to another replica, or it meets
        "no responders"), hand each one already received to its handler, and wait up to
        `timeout` seconds for the handlers to answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        subscriptions, self._subscriptions = self._subscriptions, []
        drained = asyncio.gather(*(sub.drain() for sub in subscriptions))  # type: ignore[no-untyped-call]
        try:
            await asyncio.wait_for(drained, timeout)
            if self._running:
                _, late = await asyncio.wait(
                    self._running, timeout=max(0.0, deadline - loop.time())
                )
                if late:
                    raise TimeoutError
        except TimeoutError:
            log.warning("drain_timed_out", timeout=timeout, handlers=len(self._running))

    def _taker(self, answer: Answer) -> Callable[[Msg], Awaitable[None]]:
        """nats-py awaits a subscription's callback before it hands over the next
        message: the callback decodes the request, refuses it at once if it is invalid or
        not admitted (so a flood refused cannot queue ahead of anyone), else waits for a
        free worker and starts the answer."""
        workers = asyncio.Semaphore(answer.max_workers or 1)

        async def take(message: Msg) -> None:
            try:
                request = answer.command.request.model_validate_json(message.data)
                release = answer.admit(request) if answer.admit is not None else None
            except Exception as exc:
                await self._reply(answer, message, json.dumps(error_reply(exc)).encode())
                return
            await workers.acquire()
            task = asyncio.create_task(self._answer(answer, message, request))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            task.add_done_callback(lambda _: workers.release())
            if release is not None:
                task.add_done_callback(lambda _: release())

        return take

    async def _answer(self, answer: Answer, message: Msg, request: Any) -> None:
        headers = message.headers or {}
        request_id = headers.get(REQUEST_ID_HEADER)
        if request_id:
            structlog.contextvars.bind_contextvars(request_id=request_id)  # this task's own
        interval = headers.get(KEEPALIVE_HEADER)  # a long request: say it is being worked on
        working = Working(self._nc, message.reply, interval) if interval and message.reply else None
        try:
            answered = await answer.handler(request)
            if headers.get(REPLY_HEADER) == REFUSALS_ONLY:  # sent with `Bus.start`: accepted
                return
            reply = answered.model_dump_json(by_alias=True).encode()
        except Exception as exc:
            reply = json.dumps(error_reply(exc)).encode()
        finally:
            if working is not None:
                working.stop()
        await self._reply(answer, message, reply)

    async def _reply(self, answer: Answer, message: Msg, reply: bytes) -> None:
        if not message.reply:
            return
        if len(reply) > self._nc.max_payload:  # refused by nats-py, it left the caller waiting
            reply = self._too_large(answer, len(reply))
        try:
            await self._nc.publish(message.reply, reply)
        except Exception as exc:  # the connection is gone: the caller times out
            log.warning("reply_not_sent", subject=answer.command.subject, error=str(exc))

    def _too_large(self, answer: Answer, size: int) -> bytes:
        """The error envelope sent instead of a reply larger than the bus carries."""
        subject, limit = answer.command.subject, self._nc.max_payload
        log.error("reply_too_large", subject=subject, size=size, max_payload=limit)
        error = ServiceError(
            ErrorCode.INTERNAL_ERROR,
            f"the reply to {subject} ({size} bytes) is larger than the bus carries ({limit})",
        )
        return json.dumps(error_reply(error)).encode()
