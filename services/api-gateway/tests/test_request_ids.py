"""A request id the client offers is kept only when all of it is sane: it is logged and
sent to every service, so one with a trailing newline is replaced, not echoed."""

import pytest
from starlette.types import Message, Receive, Scope, Send

from llmsafespace.gateway.observability import Observability


async def answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def request_id_for(offered: bytes) -> bytes:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "headers": [(b"x-request-id", offered)]}
    await Observability(answer)(scope, receive, send)
    return dict(sent[0]["headers"])[b"x-request-id"]


async def test_a_sane_request_id_is_kept() -> None:
    assert await request_id_for(b"trace-1.A_b") == b"trace-1.A_b"


@pytest.mark.parametrize("offered", [b"trace-1\n", b"trace 1", b"", b"x" * 65])
async def test_any_other_request_id_is_replaced(offered: bytes) -> None:
    replaced = await request_id_for(offered)
    assert replaced != offered
    assert len(replaced) == 32
