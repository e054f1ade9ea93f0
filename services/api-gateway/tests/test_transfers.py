"""The gateway's end of a file transfer when the exec-svc instance serving it is gone:
every message then meets the server's "no responders" status, which must end the
transfer (503), never pass for an empty chunk or acknowledgement. Against a real
nats-server; the test plays exec-svc's side of the subject."""

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from llmsafespace.contracts import ErrorCode, ServiceError, TransferOpened, subjects
from llmsafespace.contracts.files import ERROR_HEADER
from llmsafespace.gateway.files import Inbox, _pull

BOUND = 5.0  # seconds: a lost transfer is reported well within this, never a hang
# A transfer that spins on "no responders" never yields to the event loop, so the
# `wait_for` bounds below cannot fire: the whole test is bounded too.
pytestmark = pytest.mark.timeout(30)


def _opened() -> TransferOpened:
    return TransferOpened(subject=subjects.transfer(secrets.token_hex(16)))


async def _drain(pulled: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in pulled]


async def test_a_download_whose_service_went_away_mid_stream_fails_503_at_once(
    connection: NatsClient,
) -> None:
    """exec-svc answers two pulls, then its process (and subscription) is gone."""
    opened = _opened()
    served = 0
    subscription = await connection.subscribe(opened.subject)

    async def serve() -> None:
        nonlocal served
        async for pull in subscription.messages:
            await connection.publish(pull.reply, b"chunk")
            served += 1
            if served == 2:
                await subscription.unsubscribe()  # the pulls still pending are lost
                return

    server = asyncio.create_task(serve())
    with pytest.raises(ServiceError) as lost:
        await asyncio.wait_for(_drain(_pull(connection, opened)), BOUND)
    assert lost.value.code is ErrorCode.SERVICE_UNAVAILABLE
    assert served == 2
    server.cancel()


async def test_a_download_nobody_serves_fails_503_at_once(connection: NatsClient) -> None:
    with pytest.raises(ServiceError) as lost:
        await asyncio.wait_for(_drain(_pull(connection, _opened())), BOUND)
    assert lost.value.code is ErrorCode.SERVICE_UNAVAILABLE


async def test_an_upload_chunk_nobody_acknowledges_because_nobody_serves_it_is_503(
    connection: NatsClient,
) -> None:
    """What `_upload` waits for after each chunk, and for the final `FileWritten`."""
    async with Inbox(connection, _opened().subject) as inbox:
        await inbox.send(b"chunk")
        with pytest.raises(ServiceError) as lost:
            await asyncio.wait_for(inbox.reply(), BOUND)
    assert lost.value.code is ErrorCode.SERVICE_UNAVAILABLE


async def test_a_reply_carrying_an_error_envelope_still_raises_that_error(
    connection: NatsClient,
) -> None:
    opened = _opened()
    subscription = await connection.subscribe(opened.subject)
    async with Inbox(connection, opened.subject) as inbox:
        await inbox.send(b"chunk")
        message: Msg = await subscription.next_msg(timeout=BOUND)
        refusal = ServiceError(ErrorCode.PAYLOAD_TOO_LARGE, "too large")
        await connection.publish(
            message.reply,
            refusal.envelope().model_dump_json(exclude_none=True).encode(),
            headers={ERROR_HEADER: "1"},
        )
        with pytest.raises(ServiceError) as refused:
            await asyncio.wait_for(inbox.reply(), BOUND)
    assert refused.value.code is ErrorCode.PAYLOAD_TOO_LARGE
