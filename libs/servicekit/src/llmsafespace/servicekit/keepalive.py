"""Long requests kept alive by their responder, so a caller learns within SILENCE seconds
that the service answering it stopped, instead of when its timeout ends.

A request allowed more than its bus's `silence` (SILENCE seconds: a create, a snapshot, a
resume moving a workspace, a synchronous execution) names the interval it wants in
KEEPALIVE_HEADER (a fifth of the silence);
the command server answering it sends an empty `working` message (WORKING_HEADER) to its
reply subject every such interval while the handler runs, then its reply. The caller
waits for the reply as long as its timeout allows, but gives up once it has heard
nothing for the silence: the service answering it stopped (killed, its host gone),
or the bus was cut for that long. A request that ends sooner sends no `working` message
at all (the server's timer is cancelled with its answer).

The replies of one connection's kept-alive requests share one inbox subscription, told
apart by token, as nats-py's own requests do.
"""

import asyncio
import contextlib
import itertools

import nats.errors
from nats.aio.client import NO_RESPONDERS_STATUS
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import Header

KEEPALIVE_HEADER = "Llmsafespace-Keepalive"
WORKING_HEADER = "Llmsafespace-Working"
SILENCE = 15.0  # seconds without a word after which the responder counts as stopped


class ResponderStopped(Exception):
    """Nothing was heard from the responder for the silence."""


class _Waiting:
    """One request's reply to come, failed by a timer past its deadline or its silence."""

    def __init__(self, deadline: float, silence: float) -> None:
        self._loop = asyncio.get_running_loop()
        self.reply: asyncio.Future[Msg] = self._loop.create_future()
        self._deadline = deadline
        self._silence = silence
        self._heard = self._loop.time()
        self._timer = self._loop.call_at(min(deadline, self._heard + silence), self._check)

    def heard(self) -> None:
        self._heard = self._loop.time()

    def _check(self) -> None:
        now = self._loop.time()
        if now >= self._deadline:
            self.reply.set_exception(nats.errors.TimeoutError)
        elif now - self._heard >= self._silence:
            self.reply.set_exception(ResponderStopped())
        else:
            self._timer = self._loop.call_at(
                min(self._deadline, self._heard + self._silence), self._check
            )

    def close(self) -> None:
        self._timer.cancel()


class KeptAlive:
    """The kept-alive requests of one connection: a responder unheard for `silence`
    seconds has stopped."""

    def __init__(self, connection: NatsClient, silence: float = SILENCE) -> None:
        self._nc = connection
        self.silence = silence
        self._prefix = ""
        self._subscription: Subscription | None = None
        self._tokens = itertools.count()
        self._waiting: dict[str, _Waiting] = {}

    async def request(
        self, subject: str, payload: bytes, *, timeout: float, headers: dict[str, str] | None
    ) -> Msg:
        """The reply; raises nats' `TimeoutError` past `timeout`, `NoRespondersError`
        when no one serves `subject`, `ResponderStopped` after `silence` unheard."""
        if self._subscription is None:
            self._prefix = self._nc.new_inbox()
            self._subscription = await self._nc.subscribe(f"{self._prefix}.*", cb=self._route)
        token = str(next(self._tokens))
        deadline = asyncio.get_running_loop().time() + timeout
        waiting = self._waiting[token] = _Waiting(deadline, self.silence)
        try:
            await self._nc.publish(
                subject,
                payload,
                reply=f"{self._prefix}.{token}",
                headers={**(headers or {}), KEEPALIVE_HEADER: str(self.silence / 5)},
            )
            message = await waiting.reply
        finally:
            waiting.close()
            del self._waiting[token]
        if message.headers and message.headers.get(Header.STATUS) == NO_RESPONDERS_STATUS:
            raise nats.errors.NoRespondersError
        return message

    async def _route(self, message: Msg) -> None:
        waiting = self._waiting.get(message.subject.rpartition(".")[2])
        if waiting is None or waiting.reply.done():
            return  # a caller that gave up, or a message after the reply
        if message.headers and message.headers.get(WORKING_HEADER):
            waiting.heard()
        else:
            waiting.reply.set_result(message)


class Working:
    """Sends `working` messages to `reply` every `interval` seconds (as the caller asked,
    kept within 0.1-60) until stopped."""

    def __init__(self, connection: NatsClient, reply: str, interval: str) -> None:
        try:
            self._every = min(max(float(interval), 0.1), 60.0)
        except ValueError:
            self._every = SILENCE / 5
        self._nc = connection
        self._reply = reply
        self._loop = asyncio.get_running_loop()
        self._sending: set[asyncio.Task[None]] = set()
        self._timer = self._loop.call_later(self._every, self._tick)

    def stop(self) -> None:
        self._timer.cancel()

    def _tick(self) -> None:
        task = self._loop.create_task(self._send())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        self._timer = self._loop.call_later(self._every, self._tick)

    async def _send(self) -> None:
        # The bus down a while: the caller may give up on this request, rightly.
        with contextlib.suppress(nats.errors.Error):
            await self._nc.publish(self._reply, b"", headers={WORKING_HEADER: "1"})
