"""The agent run directly on the host, spoken to in its raw protocol."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from llmsafespace.agent.protocol import Frame, encode, read_frame

TOKEN = "test-token"
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture(scope="module")
def socket_path() -> Iterator[str]:
    directory = Path(tempfile.mkdtemp(dir="/tmp"))
    (directory / "token").write_text(TOKEN)
    socket = directory / "agent.sock"
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llmsafespace.agent",
            "--socket",
            str(socket),
            "--token-file",
            str(directory / "token"),
            "--workspace",
            str(directory),
        ],
    )
    for _ in range(500):
        if socket.exists():
            break
        agent.poll()
        assert agent.returncode is None
        subprocess.run(["sleep", "0.01"], check=True)
    yield str(socket)
    agent.kill()
    agent.wait()
    subprocess.run(["rm", "-rf", str(directory)], check=True)


async def _open(socket_path: str, token: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(socket_path)
    writer.write(encode({"op": "hello", "token": token}))
    return reader, writer


@pytest.fixture
async def connection(socket_path: str) -> AsyncIterator[Conn]:
    reader, writer = await _open(socket_path, TOKEN)
    assert (await read_frame(reader))[0] == {"ok": True}
    yield reader, writer
    writer.close()


async def _ask(connection: Conn, frame: Frame) -> Frame:
    reader, writer = connection
    writer.write(encode(frame))
    return (await read_frame(reader))[0]


def test_the_token_file_is_deleted_once_read(socket_path: str) -> None:
    assert not os.path.exists(os.path.join(os.path.dirname(socket_path), "token"))


async def test_a_wrong_token_closes_the_connection(socket_path: str) -> None:
    reader, writer = await _open(socket_path, "wrong")
    with pytest.raises(asyncio.IncompleteReadError):
        await read_frame(reader)
    writer.close()


async def test_ping_is_answered_with_the_same_id(connection: Conn) -> None:
    assert await _ask(connection, {"id": 7, "op": "ping"}) == {"id": 7, "type": "pong"}


async def test_an_unknown_op_is_an_error_and_the_connection_stays_up(connection: Conn) -> None:
    reply = await _ask(connection, {"id": 1, "op": "format_disk"})
    assert reply["type"] == "error"
    assert reply["id"] == 1
    assert await _ask(connection, {"id": 2, "op": "ping"}) == {"id": 2, "type": "pong"}


async def test_a_header_that_is_not_json_is_an_error(connection: Conn) -> None:
    reader, writer = connection
    writer.write(len(b"{nope").to_bytes(4, "big") + b"{nope")
    reply, _ = await read_frame(reader)
    assert reply["type"] == "error"
    assert await _ask(connection, {"id": 3, "op": "ping"}) == {"id": 3, "type": "pong"}


async def test_output_comes_before_the_result_with_the_trailing_value(connection: Conn) -> None:
    reader, writer = connection
    writer.write(encode({"id": 5, "op": "run_code", "code": "print('a')\n6*7", "timeout": 10}))
    frames = [(await read_frame(reader))[0]]
    while frames[-1]["type"] != "result":
        frames.append((await read_frame(reader))[0])
    output = frames[:-1]  # a write may arrive split over several frames
    assert {(frame["id"], frame["type"], frame["stream"]) for frame in output} == {
        (5, "output", "stdout")
    }
    assert "".join(frame["data"] for frame in output) == "a\n"
    assert frames[-1]["result"] == "42"
    assert frames[-1]["usage"]["peakMemoryBytes"] > 0


async def test_cancel_ends_a_running_command(connection: Conn) -> None:
    reader, writer = connection
    writer.write(encode({"id": 10, "op": "run_command", "command": "sleep 30", "timeout": 60}))
    await asyncio.sleep(0.2)
    writer.write(encode({"id": 11, "op": "cancel", "target": 10}))
    frames = {}
    while len(frames) < 2:
        frame, _ = await read_frame(reader)
        frames[frame["id"]] = frame
    assert frames[11]["type"] == "ack"
    assert frames[10]["status"] == "cancelled"
    assert frames[10]["endedBy"] == "cancelled"


async def test_stdin_frames_feed_a_command_in_order_and_eof_closes_it(connection: Conn) -> None:
    reader, writer = connection
    command = "read first; echo got:$first; cat; echo end"
    writer.write(
        encode({"id": 20, "op": "run_command", "command": command, "timeout": 30, "stdin": True})
    )
    # Sent at once, before the command may have started: nothing is lost or reordered.
    for index, (data, eof) in enumerate((("hello\n", False), ("a", False), ("b\n", True))):
        writer.write(
            encode({"id": 21 + index, "op": "stdin", "target": 20, "data": data, "eof": eof})
        )
    frames = [(await read_frame(reader))[0]]
    while frames[-1]["type"] != "result":
        frames.append((await read_frame(reader))[0])
    assert "".join(f["data"] for f in frames if f["type"] == "output") == "got:hello\nab\nend\n"
    assert frames[-1]["status"] == "completed"


async def test_a_command_without_stdin_reads_nothing(connection: Conn) -> None:
    reader, writer = connection
    writer.write(
        encode({"id": 30, "op": "run_command", "command": "cat; echo done", "timeout": 30})
    )
    frames = [(await read_frame(reader))[0]]
    while frames[-1]["type"] != "result":
        frames.append((await read_frame(reader))[0])
    assert "".join(f["data"] for f in frames if f["type"] == "output") == "done\n"
