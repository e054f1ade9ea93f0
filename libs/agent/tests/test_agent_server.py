"""The agent run directly on the host, spoken to in its raw protocol."""

from __future__ import annotations

import asyncio
import os
import socket as socket_module
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from llmsafespace.agent import server
from llmsafespace.agent.protocol import Frame, encode, read_frame, read_frame_sync

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


async def test_output_comes_before_the_trailing_value_displayed_then_the_result(
    connection: Conn,
) -> None:
    reader, writer = connection
    writer.write(encode({"id": 5, "op": "run_code", "code": "print('a')\n6*7", "timeout": 10}))
    frames = [(await read_frame(reader))[0]]
    while frames[-1]["type"] != "result":
        frames.append((await read_frame(reader))[0])
    output = frames[:-2]  # a write may arrive split over several frames
    assert {(frame["id"], frame["type"], frame["stream"]) for frame in output} == {
        (5, "output", "stdout")
    }
    assert "".join(frame["data"] for frame in output) == "a\n"
    assert frames[-2] == {
        "id": 5,
        "type": "display",
        "data": {"text/plain": "42"},
        "isMainResult": True,
        "truncated": False,
    }
    assert frames[-1]["result"] == "42"
    assert frames[-1]["usage"]["peakMemoryBytes"] > 0


async def _run_code(connection: Conn, request_id: int, code: str) -> Frame:
    """The result frame of ``code`` (output frames are skipped)."""
    reader, writer = connection
    writer.write(encode({"id": request_id, "op": "run_code", "code": code, "timeout": 30}))
    frame = (await read_frame(reader))[0]
    while frame["type"] != "result":
        frame = (await read_frame(reader))[0]
    return frame


# Scans the worker's own memory for ``needle`` (and a control string that must be found);
# both are built from reversed bytes so the cell's source holds no copy of either.
_SCAN = """
import ctypes, os
needle = bytearray(reversed({needle!r}))
control = bytearray(reversed(b"lortnoc-eht-si-siht"))
buffer = bytearray(1 << 20)
mine = {{ctypes.addressof(ctypes.c_char.from_buffer(b)): len(b) for b in (needle, control, buffer)}}
control_copy = bytes(control)  # the one the scan must find
found = {{"needle": 0, "control": 0}}
mem = os.open("/proc/self/mem", os.O_RDONLY)
for line in open("/proc/self/maps").read().splitlines():
    span, perms = line.split()[:2]
    start, end = (int(x, 16) for x in span.split("-"))
    if not perms.startswith("rw"):
        continue
    for offset in range(start, end, len(buffer) - 64):
        try:
            got = os.preadv(mem, [memoryview(buffer)[: min(len(buffer), end - offset)]], offset)
        except OSError:
            continue
        for name, wanted in (("needle", needle), ("control", control)):
            at = buffer.find(wanted, 0, got)
            while at != -1:
                address = offset + at
                if not any(base <= address < base + size for base, size in mine.items()):
                    found[name] += 1
                at = buffer.find(wanted, at + 1, got)
os.close(mem)
(found["needle"], found["control"] > 0)
"""


async def test_the_worker_holds_no_copy_of_the_agents_token(connection: Conn) -> None:
    # The worker is forked from the agent, which holds the token; it wipes its copy.
    code = _SCAN.format(needle=TOKEN.encode()[::-1])
    assert (await _run_code(connection, 30, code))["result"] == "(0, True)"


async def test_a_crashed_worker_is_replaced_by_a_fresh_one_that_is_just_as_clean(
    connection: Conn,
) -> None:
    await _run_code(connection, 40, "left_behind = 1")
    crash = await _run_code(
        connection, 41, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"
    )
    assert (crash["status"], crash["exitCode"], crash["endedBy"]) == ("failed", 137, "signal")
    fresh = await _run_code(connection, 42, "'left_behind' in globals()")
    assert fresh["result"] == "False"
    code = _SCAN.format(needle=TOKEN.encode()[::-1])
    assert (await _run_code(connection, 43, code))["result"] == "(0, True)"


async def test_the_worker_has_only_its_own_fds_and_a_normal_interpreter(connection: Conn) -> None:
    code = (
        "import asyncio, os, pickle, ssl, sys\n"
        "class Point: pass\n"
        "asyncio.run(asyncio.sleep(0))\n"
        "fds = len(os.listdir('/proc/self/fd'))  # 0-2, the two control pipes, the listing\n"
        "(fds, ssl.OPENSSL_VERSION[:7], type(pickle.loads(pickle.dumps(Point()))).__name__,\n"
        " os.getsid(0) == os.getpid(), 'PYTHONPATH' in os.environ)"
    )
    result = await _run_code(connection, 50, code)
    assert result["result"] == "(6, 'OpenSSL', 'Point', True, False)"


async def _frames(connection: Conn, frame: Frame) -> list[Frame]:
    """Every reply to ``frame`` up to its last (a ``result`` or an ``error``)."""
    reader, writer = connection
    writer.write(encode(frame))
    frames = [(await read_frame(reader))[0]]
    while frames[-1]["type"] not in ("result", "error"):
        frames.append((await read_frame(reader))[0])
    return frames


_SURROGATES = """
class Shown:
    def _repr_html_(self):
        return '<b>\\udcff</b>'

display(Shown())
print('out \\udcff')
raise ValueError('bad \\udcff')
"""


async def test_lone_surrogates_leave_the_agent_as_the_replacement_character(
    connection: Conn, tmp_path: Path
) -> None:
    """A name that is not UTF-8 (decoded with surrogateescape) and a cell's lone
    surrogates: each is U+FFFD in the frames, so the host can encode every string."""
    (tmp_path / os.fsdecode(b"bad\xffname")).touch()
    listing = await _ask(connection, {"id": 40, "op": "list_files", "path": str(tmp_path)})
    assert [entry["name"] for entry in listing["files"]] == ["bad\ufffdname"]
    frames = await _frames(
        connection, {"id": 41, "op": "run_code", "code": _SURROGATES, "timeout": 30}
    )
    shown = [frame["data"] for frame in frames if frame["type"] == "display"]
    assert shown == [{"text/html": "<b>\ufffd</b>", "text/plain": shown[0]["text/plain"]}]
    printed = "".join(frame["data"] for frame in frames if frame["type"] == "output")
    assert printed == "out \ufffd\n"
    assert frames[-1]["error"]["value"] == "bad \ufffd"
    assert "bad \ufffd" in frames[-1]["error"]["traceback"]


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


BAD_COMMANDS = {
    "NUL in the command": {"command": "echo a\0b"},
    "NUL in an env value": {"command": "true", "env": {"A": "x\0y"}},
    "'=' in an env name": {"command": "true", "env": {"A=B": "x"}},
    "an empty env name": {"command": "true", "env": {"": "x"}},
    "NUL in the working dir": {"command": "true", "cwd": "/tmp\0x"},
}


@pytest.mark.parametrize("fields", BAD_COMMANDS.values(), ids=BAD_COMMANDS.keys())
async def test_a_bad_command_request_is_an_error_and_the_connection_keeps_serving(
    connection: Conn, fields: Frame
) -> None:
    reply = await _ask(connection, {"id": 40, "op": "run_command", "timeout": 5, **fields})
    assert reply["type"] == "error"
    assert reply["id"] == 40
    assert await _ask(connection, {"id": 41, "op": "ping"}) == {"id": 41, "type": "pong"}


async def test_nul_in_code_is_an_error_and_the_connection_keeps_serving(connection: Conn) -> None:
    reply = await _ask(connection, {"id": 42, "op": "run_code", "code": "1\0", "timeout": 5})
    assert (reply["type"], reply["id"]) == ("error", 42)
    assert await _ask(connection, {"id": 43, "op": "ping"}) == {"id": 43, "type": "pong"}


async def test_a_missing_working_dir_is_a_request_error_naming_it(connection: Conn) -> None:
    request = {"id": 44, "op": "run_command", "command": "true", "timeout": 5}
    reply = await _ask(connection, {**request, "cwd": "/nonexistent"})
    assert reply["type"] == "error"
    assert "code" not in reply  # a client error (invalid_request), not an agent failure
    assert "/nonexistent" in reply["message"]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_what_a_command_left_running_ends_with_it(connection: Conn) -> None:
    reader, writer = connection
    command = "for i in 1 2 3; do sleep 300 & done; echo $!"
    writer.write(encode({"id": 50, "op": "run_command", "command": command, "timeout": 10}))
    frames = [(await read_frame(reader))[0]]
    while frames[-1]["type"] != "result":
        frames.append((await read_frame(reader))[0])
    assert frames[-1]["status"] == "completed"
    pid = int("".join(f["data"] for f in frames if f["type"] == "output"))
    for _ in range(1000):  # SIGKILL was sent before the result; dying takes a moment
        if not _running(pid):
            break
        await asyncio.sleep(0.01)
    assert not _running(pid)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_agent_serves_tcp_as_in_a_pod(tmp_path: Path, host: str) -> None:
    (tmp_path / "token").write_text(TOKEN)
    family = socket_module.AF_INET6 if ":" in host else socket_module.AF_INET
    with socket_module.socket(family) as free:
        free.bind((host, 0))
        port = free.getsockname()[1]
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    argv = [sys.executable, "-m", "llmsafespace.agent", "--listen", listen]
    argv += ["--token-file", str(tmp_path / "token"), "--workspace", str(tmp_path)]
    agent = subprocess.Popen(argv)
    try:
        while True:
            try:
                client = socket_module.create_connection((host, port))
                break
            except OSError:
                assert agent.poll() is None
                subprocess.run(["sleep", "0.01"], check=True)
        with client, client.makefile("rb") as stream:
            client.sendall(encode({"op": "hello", "token": TOKEN}))
            assert read_frame_sync(stream) == ({"ok": True}, b"")
            client.sendall(encode({"op": "ping", "id": 7}))
            assert read_frame_sync(stream) == ({"id": 7, "type": "pong"}, b"")
    finally:
        agent.kill()
        agent.wait()


def test_execution_ids_are_held_unique_up_to_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "MAX_EXECUTION_IDS", 3)
    ids = server.ExecutionIds()
    for number in range(4):
        ids.claim(f"exec-{number}")
    ids.claim(None)  # a request naming none (a synchronous execution)
    with pytest.raises(server.RequestError) as again:
        ids.claim("exec-3")
    assert again.value.code == "conflict"
    assert str(again.value) == "executionId exec-3 was already used in this sandbox"
    ids.claim("exec-0")  # the oldest, past the bound: forgotten
