"""A resume replays what the output stream still holds of an execution, and ends cleanly
also when the stream, full, has dropped the execution's first messages (its `started`
marker among them): with the terminal message, not a premature `execution_failed`.
Against a real nats-server with JetStream and a small output limit."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import nats
import pytest
from nats.aio.client import Client as NatsClient

from llmsafespace.contracts import (
    Contract,
    EndedMarker,
    ExecutionResult,
    ExecutionStatus,
    OutputChunk,
    ServerError,
    ServerExecutionComplete,
    ServerMessage,
    ServerOutput,
    StartedMarker,
    StreamName,
    subjects,
)
from llmsafespace.gateway.relay import Follower
from llmsafespace.servicekit import ensure_streams

SANDBOX, EXECUTION = "sb-aaaaaaaaaaaa", "exec-replay"
LIMIT = 64 * 1024
CHUNKS = 40  # of 4 KiB: more than the stream keeps
WAIT = 0.5  # what the socket gives an execution to report its start (START_WAIT there)


@pytest.fixture
async def connection(nats_url: str) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_url)
    await ensure_streams(client, LIMIT)
    yield client
    await client.close()


async def _publish(connection: NatsClient, message: Contract) -> None:
    subject = subjects.output(SANDBOX, EXECUTION)
    await connection.jetstream().publish(subject, message.model_dump_json(by_alias=True).encode())


async def _started_then_flooded(connection: NatsClient) -> None:
    """`started` (a 60 s execution), then more output than the stream keeps."""
    await _publish(connection, StartedMarker(seq=1, timeout=60, started_at=datetime.now(UTC)))
    for seq in range(2, CHUNKS + 2):
        chunk = OutputChunk(seq=seq, stream=StreamName.STDOUT, content="x" * 4096, timestamp=0)
        await _publish(connection, chunk)


async def _end(connection: NatsClient) -> None:
    now = datetime.now(UTC)
    result = ExecutionResult(
        execution_id=EXECUTION,
        sandbox_id=SANDBOX,
        status=ExecutionStatus.COMPLETED,
        exit_code=0,
        stdout="",
        stderr="",
        started_at=now,
        completed_at=now,
        duration_ms=1.0,
    )
    await _publish(connection, EndedMarker(seq=CHUNKS + 2, result=result))


async def _replayed(connection: NatsClient) -> list[ServerMessage]:
    follower = await Follower.replay(connection, SANDBOX, EXECUTION, grace=1.0)
    try:
        return [message async for message in follower.messages(0, WAIT)]
    finally:
        await follower.close()


async def test_a_resume_of_an_ended_execution_whose_start_was_dropped_ends_with_its_result(
    connection: NatsClient,
) -> None:
    await _started_then_flooded(connection)
    await _end(connection)
    info = await connection.jetstream().stream_info(subjects.OUTPUT_STREAM)
    assert info.state.first_seq > 1  # the start and the first output went

    replayed = await _replayed(connection)

    assert isinstance(replayed[-1], ServerExecutionComplete)
    outputs = [message for message in replayed if isinstance(message, ServerOutput)]
    assert outputs
    assert outputs[0].seq > 2
    assert [message.seq for message in outputs] == list(range(outputs[0].seq, CHUNKS + 2))


async def test_a_resume_of_a_quiet_running_execution_whose_start_was_dropped_waits_for_its_end(
    connection: NatsClient,
) -> None:
    await _started_then_flooded(connection)
    follower = asyncio.create_task(_replayed(connection))
    await asyncio.sleep(4 * WAIT)  # quiet: no `started` said how long it may take
    assert not follower.done(), follower.result()

    await _end(connection)
    replayed = await asyncio.wait_for(follower, 10)

    assert not [message for message in replayed if isinstance(message, ServerError)]
    assert isinstance(replayed[-1], ServerExecutionComplete)
