"""Control messages of a streamed execution: stdin sent before anyone reads the stream,
and a cancel the server cannot match to an execution."""

import asyncio
import threading

import pytest

from llmsafespace.sdk import AsyncSandbox, Complete, NotFoundError, Sandbox, Stdout

pytestmark = pytest.mark.stack
WAIT = 60.0  # a bound on a call that used to hang: a hang fails, never a slow run


def test_send_stdin_before_iterating_starts_the_command(
    client_env, shared: AsyncSandbox, requires_stream
) -> None:
    sandbox = Sandbox.connect(shared.id)
    stream = sandbox.stream_command("cat; echo end", stdin=True, timeout=60)
    sent = threading.Thread(
        target=stream.send_stdin, args=("abc",), kwargs={"eof": True}, daemon=True
    )
    sent.start()
    sent.join(WAIT)
    assert not sent.is_alive(), "send_stdin waited for an iteration that never came"
    assert stream.wait().stdout == "abcend\n"
    sandbox.close()


async def test_async_send_stdin_before_iterating_starts_the_command(
    shared: AsyncSandbox, requires_stream
) -> None:
    stream = shared.stream_command("cat", stdin=True, timeout=60)
    async with asyncio.timeout(WAIT):
        await stream.send_stdin("one ", eof=False)
        await stream.send_stdin("two", eof=True)
    events = [event async for event in stream]
    assert "".join(event.text for event in events if isinstance(event, Stdout)) == "one two"
    assert isinstance(events[-1], Complete)


def test_cancelling_an_unknown_execution_is_not_found(
    client_env, shared: AsyncSandbox, requires_stream
) -> None:
    sandbox = Sandbox.connect(shared.id)
    with pytest.raises(NotFoundError, match="exec-nosuchthing"):
        sandbox.cancel("exec-nosuchthing")
    sandbox.close()


async def test_a_cancel_from_another_client_still_cancels(
    client_env, shared: AsyncSandbox, requires_stream
) -> None:
    stream = shared.stream_command("echo start; sleep 30", timeout=60)
    other = await AsyncSandbox.connect(shared.id)
    async for event in stream:
        if isinstance(event, Stdout):
            await other.cancel(stream.execution_id)  # not its stream: over a socket of its own
    await other.close()
    assert stream.result is not None
    assert stream.result.status.value == "cancelled"
