"""A long request is kept alive by the command server answering it, and fails soon, 503,
once nothing is heard from it: on a real nats-server, with a short `silence`."""

import asyncio
import time

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from llmsafespace.contracts import ErrorCode, Sandbox, ServiceError, commands
from llmsafespace.servicekit import Bus
from llmsafespace.servicekit.keepalive import KEEPALIVE_HEADER

from .test_commands import Sandboxes, _ref, _serve

SILENCE = 0.5


async def test_a_request_answered_long_after_the_silence_is_kept_alive_by_its_server(
    connection: NatsClient,
) -> None:
    sandboxes = Sandboxes()
    sandboxes.gate.clear()
    await _serve(connection, sandboxes, max_workers=1)
    bus = Bus(connection, silence=SILENCE)
    asking = asyncio.create_task(
        bus.request(commands.SANDBOX_GET, _ref("sb-aaaaaaaaaaaa"), timeout=30)
    )
    await sandboxes.started.get()
    await asyncio.sleep(4 * SILENCE)  # the handler takes longer than the silence
    sandboxes.gate.set()
    sandbox = await asyncio.wait_for(asking, 10)
    assert (type(sandbox), sandbox.id) == (Sandbox, "sb-aaaaaaaaaaaa")


async def test_a_request_whose_server_stops_answering_fails_after_the_silence_not_the_timeout(
    connection: NatsClient,
) -> None:
    taken: list[Msg] = []

    async def take_and_die(message: Msg) -> None:  # a service killed once it took it
        taken.append(message)

    await connection.subscribe(commands.SANDBOX_GET.subject, cb=take_and_die)
    await connection.flush()
    bus = Bus(connection, silence=SILENCE)
    started = time.monotonic()
    with pytest.raises(ServiceError) as stopped:
        await asyncio.wait_for(
            bus.request(commands.SANDBOX_GET, _ref("sb-aaaaaaaaaaaa"), timeout=60), 10
        )
    assert stopped.value.code is ErrorCode.SERVICE_UNAVAILABLE
    assert "stopped during the request" in stopped.value.message
    assert time.monotonic() - started >= SILENCE
    assert [float((m.headers or {})[KEEPALIVE_HEADER]) for m in taken] == [SILENCE / 5]


async def test_a_kept_alive_request_nobody_serves_is_unavailable_at_once(
    connection: NatsClient,
) -> None:
    bus = Bus(connection, silence=SILENCE)
    with pytest.raises(ServiceError) as unserved:
        await asyncio.wait_for(
            bus.request(commands.SANDBOX_GET, _ref("sb-aaaaaaaaaaaa"), timeout=60), SILENCE
        )
    assert unserved.value.code is ErrorCode.SERVICE_UNAVAILABLE
    assert "no service answers" in unserved.value.message


async def test_a_short_request_is_not_kept_alive(connection: NatsClient) -> None:
    taken: list[Msg] = []

    async def answer(message: Msg) -> None:
        taken.append(message)
        await message.respond(b'{"error": {"code": "not_found", "message": "gone"}}')

    await connection.subscribe(commands.SANDBOX_GET.subject, cb=answer)
    bus = Bus(connection, silence=SILENCE)
    with pytest.raises(ServiceError):
        await bus.request(commands.SANDBOX_GET, _ref("sb-aaaaaaaaaaaa"), timeout=SILENCE / 2)
    assert KEEPALIVE_HEADER not in (taken[0].headers or {})
