"""A `Bus` connection through a FastStream broker, for unit tests of one service.

Under FastStream's `TestNatsBroker` the broker has no server: its requests and
publishes reach the routers' handlers in memory, through the same middlewares (errors
come back as envelopes). A `Bus(BrokerConnection(broker))` lets the code under test
send its commands and events exactly as it does in production, to test handlers that
stand in for the other services.
"""

from dataclasses import dataclass

import nats.errors
from faststream.exceptions import SubscriberNotFound
from faststream.nats import NatsBroker


@dataclass(frozen=True)
class BrokeredReply:
    data: bytes


class BrokerConnection:
    """The bus's `Connection` over `broker` (see `bus.Connection`)."""

    def __init__(self, broker: NatsBroker) -> None:
        self._broker = broker

    @property
    def is_connected(self) -> bool:
        return True

    async def request(
        self, subject: str, payload: bytes, *, timeout: float, headers: dict[str, str] | None
    ) -> BrokeredReply:
        try:
            reply = await self._broker.request(payload, subject, headers=headers, timeout=timeout)
        except SubscriberNotFound as exc:
            raise nats.errors.NoRespondersError from exc
        body = reply.body
        return BrokeredReply(body if isinstance(body, bytes) else bytes(body))

    async def publish(
        self, subject: str, payload: bytes, reply: str = "", headers: dict[str, str] | None = None
    ) -> None:
        await self._broker.publish(payload, subject, reply_to=reply, headers=headers)
