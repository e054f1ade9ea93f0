"""A dropped stream reconnects and resumes after the last `seq` it saw. The server is a
real WebSocket server speaking the protocol, which drops the first connection mid-run."""

import json
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from llmsafespace.sdk import Complete, Stdout
from llmsafespace.sdk.config import ClientConfig
from llmsafespace.sdk.streaming import AsyncExecutionStream


def output(execution_id: str, seq: int, text: str) -> str:
    return json.dumps(
        {
            "type": "output",
            "executionId": execution_id,
            "stream": "stdout",
            "content": text,
            "seq": seq,
            "timestamp": 0,
        }
    )


async def test_a_dropped_stream_resumes_after_the_last_seq_without_repeats() -> None:
    received: list[dict[str, Any]] = []

    async def handler(socket: ServerConnection) -> None:
        message = json.loads(await socket.recv())
        received.append(message)
        execution_id = message["executionId"]
        if message["type"] == "execute":
            await socket.send(output(execution_id, 1, "one\n"))
            await socket.send(output(execution_id, 2, "two\n"))
            return  # the connection drops without a close frame's reason
        await socket.send(output(execution_id, 2, "two\n"))  # replayed: must be skipped
        await socket.send(output(execution_id, 3, "three\n"))
        await socket.send(
            json.dumps(
                {
                    "type": "execution_complete",
                    "executionId": execution_id,
                    "seq": 4,
                    "status": "completed",
                    "exitCode": 0,
                    "durationMs": 5,
                }
            )
        )

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        config = ClientConfig(f"http://127.0.0.1:{port}/api/v1", "key")
        stream = AsyncExecutionStream(config, "sb-fakefakefake", "command", "seq 3")
        events = [event async for event in stream]

    assert [e.text for e in events if isinstance(e, Stdout)] == ["one\n", "two\n", "three\n"]
    assert isinstance(events[-1], Complete)
    assert events[-1].result.stdout == "one\ntwo\nthree\n"
    assert [m["type"] for m in received] == ["execute", "resume"]
    assert received[1] == {"type": "resume", "executionId": stream.execution_id, "lastSeq": 2}
