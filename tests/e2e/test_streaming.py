"""Live execution over WebSocket and SSE, relayed through NATS JetStream."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import nats
import pytest
import websockets
from pydantic import TypeAdapter
from websockets.asyncio.client import ClientConnection

from llmsafespace.contracts import (
    Contract,
    EndedMarker,
    ExecutionResult,
    ExecutionStatus,
    OutputChunk,
    ServerMessage,
    ServerOutput,
    StartedMarker,
    new_execution_id,
    subjects,
)
from llmsafespace.devstack import Stack
from llmsafespace.gateway.relay import Follower, Outputs
from llmsafespace.servicekit.keepalive import SILENCE

from .test_audit import audit

pytestmark = pytest.mark.stack

WAIT = 60  # seconds any single expected message may take on a loaded 2-core machine
TERMINAL = {"execution_complete", "execution_cancelled"}
STREAM_GRACE = 2  # seconds a test gateway waits past an execution's timeout
_SERVER_MESSAGE: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)


def ws_url(stack: Stack, sandbox_id: str, api_url: str | None = None) -> str:
    base = (api_url or stack.api_url).replace("http://", "ws://")
    return f"{base}/sandboxes/{sandbox_id}/stream"


async def connect(url: str, key: str) -> ClientConnection:
    return await websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"})


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return message


async def until_terminal(ws: ClientConnection, execution_id: str) -> list[dict[str, Any]]:
    """Every message of one execution up to and including its terminal one."""
    messages = []
    while True:
        message = await receive(ws)
        if message.get("executionId") != execution_id:
            continue
        messages.append(message)
        if message["type"] in TERMINAL or message["type"] == "error":
            return messages


async def execute(ws: ClientConnection, content: str, mode: str = "code", **extra: Any) -> str:
    execution_id = new_execution_id()
    await ws.send(
        json.dumps(
            {"type": "execute", "executionId": execution_id, "mode": mode, "content": content}
            | extra
        )
    )
    return execution_id


def text_of(messages: list[dict[str, Any]], stream: str) -> str:
    return "".join(
        m["content"] for m in messages if m["type"] == "output" and m["stream"] == stream
    )


@pytest.fixture
async def ws(stack: Stack, sandbox_id: str) -> AsyncIterator[ClientConnection]:
    connection = await connect(ws_url(stack, sandbox_id), stack.admin_key)
    yield connection
    await connection.close()


async def test_interleaved_output_arrives_complete_in_order_then_one_terminal_message(
    ws: ClientConnection,
) -> None:
    code = (
        "import sys\n"
        "for i in range(100000):\n"
        "    (sys.stdout if i % 2 == 0 else sys.stderr).write(f'{i}\\n')\n"
    )
    execution_id = await execute(ws, code, timeout=120)
    messages = await until_terminal(ws, execution_id)
    assert messages[0]["type"] == "execution_start"
    assert messages[-1]["type"] == "execution_complete"
    assert messages[-1]["status"] == "completed"
    assert messages[-1]["timestamp"] >= messages[0]["timestamp"], "epoch ms, like the start"
    assert [m["type"] for m in messages].count("execution_complete") == 1
    stdout, stderr = text_of(messages, "stdout"), text_of(messages, "stderr")
    assert stdout.split() == [str(i) for i in range(0, 100000, 2)]
    assert stderr.split() == [str(i) for i in range(1, 100000, 2)]
    seqs = [m["seq"] for m in messages if "seq" in m]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "no gap, no duplicate"
    chunks = [m for m in messages if m["type"] == "output"]
    assert len(chunks) < 5000, "output is coalesced, not one message per line"


async def test_cancel_stops_a_running_loop_and_keeps_partial_output(
    ws: ClientConnection,
) -> None:
    code = "import time\nprint('before', flush=True)\nwhile True: time.sleep(0.01)"
    execution_id = await execute(ws, code, timeout=300)
    first = await receive(ws)
    assert first["type"] == "execution_start"
    assert (await receive(ws))["content"] == "before\n"
    await ws.send(json.dumps({"type": "cancel", "executionId": execution_id}))
    messages = await until_terminal(ws, execution_id)
    assert messages[-1]["type"] == "execution_cancelled"
    assert messages[-1]["status"] == "cancelled"
    assert messages[-1]["timestamp"] >= first["timestamp"], "epoch ms, like execution_start"


async def test_a_cancel_sent_right_after_its_execute_is_not_lost(ws: ClientConnection) -> None:
    """The gateway starts an execution without waiting for exec-svc to accept it: a cancel
    (or input) right behind it must still find it running, not overtake it."""
    execution_id = await execute(ws, "import time\ntime.sleep(60)", timeout=120)
    await ws.send(json.dumps({"type": "cancel", "executionId": execution_id}))
    messages = await until_terminal(ws, execution_id)
    assert messages[-1]["type"] == "execution_cancelled"


async def test_two_executions_run_at_once_on_one_socket(ws: ClientConnection) -> None:
    slow = await execute(ws, "sleep 1; echo slow", mode="command")
    fast = await execute(ws, "echo fast", mode="command")
    seen: dict[str, list[dict[str, Any]]] = {slow: [], fast: []}
    order = []
    while len(order) < 2:
        message = await receive(ws)
        seen[message["executionId"]].append(message)
        if message["type"] in TERMINAL:
            order.append(message["executionId"])
    assert order == [fast, slow]
    assert text_of(seen[fast], "stdout") == "fast\n"
    assert text_of(seen[slow], "stdout") == "slow\n"


async def test_bad_messages_get_errors_and_the_socket_stays_open(ws: ClientConnection) -> None:
    await ws.send("not json")
    error = await receive(ws)
    assert error["code"] == "invalid_message"
    assert isinstance(error["timestamp"], int)  # epoch ms, as on every server message
    await ws.send(json.dumps({"type": "teleport"}))
    assert (await receive(ws))["code"] == "unknown_message_type"
    await ws.send(json.dumps({"type": "execute", "executionId": "exec-x1", "mode": "code"}))
    error = await receive(ws)
    assert (error["code"], error["executionId"]) == ("invalid_request", "exec-x1")
    assert set(error["details"]["fields"]) == {"content"}, "the fields, as REST's envelope has"
    for timeout in (-5, 99999):  # bounds the execution request checks, not the frame
        execute = {"type": "execute", "executionId": f"exec-t{timeout}", "mode": "code"}
        await ws.send(json.dumps(execute | {"content": "1", "timeout": timeout}))
        error = await receive(ws)
        assert (error["code"], set(error["details"]["fields"])) == ("invalid_request", {"timeout"})
    await ws.send(
        json.dumps({"type": "execute", "executionId": "bad id", "mode": "code", "content": "1"})
    )
    assert (await receive(ws))["code"] == "invalid_request"
    await ws.send(json.dumps({"type": "resume", "executionId": "exec-neverseen"}))
    assert (await receive(ws))["code"] == "not_found"
    await ws.send(json.dumps({"type": "ping", "timestamp": 7}))
    assert await receive(ws) == {"type": "pong", "timestamp": 7}


@pytest.mark.parametrize(
    "message",
    [
        {"type": "cancel", "executionId": "exec-neverseen"},
        {"type": "stdin", "executionId": "exec-neverseen", "content": "x\n", "eof": True},
    ],
)
async def test_cancel_or_input_for_an_execution_that_does_not_exist_is_not_found(
    ws: ClientConnection, message: dict[str, Any]
) -> None:
    await ws.send(json.dumps(message))
    error = await receive(ws)
    assert (error["type"], error["code"], error["executionId"]) == (
        "error",
        "not_found",
        "exec-neverseen",
    )


async def test_input_from_another_socket_reaches_a_running_command(
    stack: Stack, sandbox_id: str, ws: ClientConnection
) -> None:
    execution_id = await execute(ws, "cat", mode="command", stdin=True)
    assert (await receive(ws))["type"] == "execution_start"
    other = await connect(ws_url(stack, sandbox_id), stack.admin_key)
    for content, eof in (("from elsewhere\n", False), ("", True)):
        message = {"type": "stdin", "executionId": execution_id, "content": content, "eof": eof}
        await other.send(json.dumps(message))
    messages = await until_terminal(ws, execution_id)
    await other.close()
    assert text_of(messages, "stdout") == "from elsewhere\n"


@pytest.mark.parametrize("past", [0, 1, 1000])
async def test_resume_at_or_past_the_end_gets_the_terminal_message(
    ws: ClientConnection, past: int
) -> None:
    execution_id = await execute(ws, "print('done')")
    end = (await until_terminal(ws, execution_id))[-1]
    await ws.send(
        json.dumps({"type": "resume", "executionId": execution_id, "lastSeq": end["seq"] + past})
    )
    assert await until_terminal(ws, execution_id) == [end]


async def test_a_reused_execution_id_is_rejected(ws: ClientConnection) -> None:
    execution_id = await execute(ws, "1")
    await until_terminal(ws, execution_id)
    await ws.send(
        json.dumps({"type": "execute", "executionId": execution_id, "mode": "code", "content": "2"})
    )
    assert (await receive(ws))["code"] == "invalid_request"


async def test_an_execution_id_used_on_another_socket_is_refused_before_it_runs(
    stack: Stack, sandbox_id: str, ws: ClientConnection
) -> None:
    """The sandbox's agent holds the ids it ran: the second execution never runs, and the
    first's output stream is still the first's alone when resumed."""
    execution_id = await execute(ws, "print('first')")
    first = await until_terminal(ws, execution_id)
    again = {"type": "execute", "executionId": execution_id, "mode": "code"}
    async with await connect(ws_url(stack, sandbox_id), stack.admin_key) as other:
        await other.send(json.dumps(again | {"content": "open('/tmp/ran', 'w').close()"}))
        refused = (await until_terminal(other, execution_id))[-1]
        assert (refused["type"], refused["status"]) == ("execution_complete", "error"), refused
        assert "already used in this sandbox" in refused["error"]["value"], refused
        await other.send(json.dumps({"type": "resume", "executionId": execution_id, "lastSeq": 0}))
        assert await until_terminal(other, execution_id) == first
    probe = await execute(ws, "import os; print(os.path.exists('/tmp/ran'))")
    assert text_of(await until_terminal(ws, probe), "stdout") == "False\n"


async def test_an_oversized_message_closes_the_socket_with_1009(ws: ClientConnection) -> None:
    await ws.send("x" * (2 * 1024 * 1024))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await receive(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_the_socket_is_refused_before_upgrade_without_access(
    stack: Stack, sandbox_id: str, second_user_key: str
) -> None:
    url = ws_url(stack, sandbox_id)
    for key, status in (("lsp_wrong", 401), (second_user_key, 404)):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(url, key)
        assert refused.value.response.status_code == status
        assert json.loads(refused.value.response.body)["error"]["code"]
    with pytest.raises(websockets.InvalidStatus) as refused:
        await connect(ws_url(stack, "sb-doesnotexist0"), stack.admin_key)
    assert refused.value.response.status_code == 404
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(url + f"?token={stack.admin_key}", origin="https://evil.test")
    assert refused.value.response.status_code == 403
    token_url = await websockets.connect(url + f"?token={stack.admin_key}")
    await token_url.close()


async def test_an_idle_timeout_ends_a_silent_execution_as_timeout(ws: ClientConnection) -> None:
    code = "import time\nprint('hi', flush=True)\ntime.sleep(60)"
    execution_id = await execute(ws, code, timeout=120, idleTimeout=1)
    messages = await until_terminal(ws, execution_id)
    assert (messages[-1]["status"], messages[-1]["exitCode"]) == ("timeout", 124)
    assert text_of(messages, "stdout") == "hi\n"


async def test_resume_on_another_gateway_continues_with_no_gap_and_no_duplicate(
    stack: Stack, sandbox_id: str, start_gateway: Callable[..., str]
) -> None:
    second_gateway = start_gateway()
    code = "import time\nfor i in range(300):\n    print(i, flush=True)\n    time.sleep(0.005)"
    first = await connect(ws_url(stack, sandbox_id), stack.admin_key)
    execution_id = await execute(first, code, timeout=120)
    received: list[dict[str, Any]] = []
    while len([m for m in received if m["type"] == "output"]) < 5:
        received.append(await receive(first))
    await first.close()
    last_seq = max(m["seq"] for m in received if "seq" in m)

    second = await connect(ws_url(stack, sandbox_id, second_gateway), stack.admin_key)
    await second.send(
        json.dumps({"type": "resume", "executionId": execution_id, "lastSeq": last_seq})
    )
    rest = await until_terminal(second, execution_id)
    await second.close()
    assert rest[0]["seq"] == last_seq + 1
    everything = received + rest
    assert text_of(everything, "stdout").split() == [str(i) for i in range(300)]
    assert rest[-1]["type"] == "execution_complete"


async def test_a_slow_reader_still_gets_everything(ws: ClientConnection) -> None:
    code = "import sys\nfor i in range(20000):\n    sys.stdout.write(f'{i:09d}' * 10 + '\\n')"
    execution_id = await execute(ws, code, timeout=120)
    await asyncio.sleep(5)  # the client reads nothing while ~2 MB are produced
    messages = await until_terminal(ws, execution_id)
    lines = text_of(messages, "stdout").split()
    assert lines == [f"{i:09d}" * 10 for i in range(20000)]


async def test_sse_carries_the_same_messages(
    stack: Stack, api: httpx.AsyncClient, sandbox_id: str
) -> None:
    body = {"type": "command", "content": "echo one; echo two >&2; exit 4", "stream": True}
    events = []
    async with api.stream("POST", f"/sandboxes/{sandbox_id}/execute", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line.removeprefix("data: ")))
    assert events[0]["type"] == "execution_start"
    assert text_of(events, "stdout") == "one\n"
    assert text_of(events, "stderr") == "two\n"
    assert (events[-1]["type"], events[-1]["exitCode"], events[-1]["status"]) == (
        "execution_complete",
        4,
        "failed",
    )


async def test_stdin_feeds_a_command_that_reads_input(ws: ClientConnection) -> None:
    execution_id = await execute(
        ws, "read line; echo got:$line; cat; echo end", mode="command", stdin=True
    )
    # Sent right away, before the command has surely started: none of it is lost.
    for content, eof in (("hello\n", False), ("more\n", False), ("", True)):
        message = {"type": "stdin", "executionId": execution_id, "content": content, "eof": eof}
        await ws.send(json.dumps(message))
    messages = await until_terminal(ws, execution_id)
    assert text_of(messages, "stdout") == "got:hello\nmore\nend\n"
    assert (messages[-1]["type"], messages[-1]["status"]) == ("execution_complete", "completed")


async def test_stdin_is_refused_in_code_mode_and_empty_unless_asked_for(
    ws: ClientConnection,
) -> None:
    code_id = await execute(ws, "input()", stdin=True)
    error = await receive(ws)
    assert (error["type"], error["code"], error["executionId"]) == (
        "error",
        "invalid_request",
        code_id,
    )
    execution_id = await execute(ws, "cat; echo done", mode="command")
    await ws.send(json.dumps({"type": "stdin", "executionId": execution_id, "content": "x\n"}))
    messages = await until_terminal(ws, execution_id)
    assert text_of(messages, "stdout") == "done\n"


# A streamed execution whose exec-svc dies: the client is told, the sandbox lives on.


async def test_killing_exec_svc_mid_stream_ends_with_execution_failed_and_the_sandbox_recovers(
    stack: Stack, sandbox_id: str, start_gateway: Callable[..., str]
) -> None:
    gateway = start_gateway(GATEWAY_STREAM_GRACE=str(STREAM_GRACE))
    ws = await connect(ws_url(stack, sandbox_id, gateway), stack.admin_key)
    try:
        code = "import time\nwhile True:\n    print('tick', flush=True)\n    time.sleep(0.05)"
        execution_id = await execute(ws, code, timeout=3)
        assert (await receive(ws))["type"] == "execution_start"
        assert (await receive(ws))["type"] == "output"

        killed = time.monotonic()
        stack.kill("exec-svc")
        messages = await until_terminal(ws, execution_id)
        waited = time.monotonic() - killed
        assert messages[-1]["type"] == "error"
        assert messages[-1]["code"] == "execution_failed"
        assert waited < 3 + STREAM_GRACE + 5, f"the failure took {waited:.1f} s to report"
        assert [m["type"] for m in messages].count("error") == 1

        await stack.wait_ready("exec-svc")
        again = await execute(ws, "print('back')", timeout=30)
        after = await until_terminal(ws, again)
        assert after[-1]["type"] == "execution_complete", after[-1]
        assert text_of(after, "stdout") == "back\n"
    finally:
        await ws.close()


async def test_an_execution_whose_exec_svc_is_killed_is_ended_as_lost_and_audited(
    stack: Stack, api: httpx.AsyncClient, sandbox_id: str
) -> None:
    """Killed, exec-svc neither ends the execution (the agent stops it) nor books it:
    another instance, or the one started again, ends it once the killed one has been
    unheard for `lost_after` (8 s here), long before the execution's own timeout."""
    await stack.wait_ready("exec-svc")
    ws = await connect(ws_url(stack, sandbox_id), stack.admin_key)
    try:
        code = "import time\ntime.sleep(0.3)\nprint('begun', flush=True)\ntime.sleep(600)"
        execution_id = await execute(ws, code, timeout=600)
        while (message := await receive(ws))["type"] != "output":  # recorded in flight by now
            assert message["type"] == "execution_start", message
        assert message["content"] == "begun\n"
        stack.kill("exec-svc")
        messages = await until_terminal(ws, execution_id)  # each wait at most WAIT seconds
        assert messages[-1]["type"] == "execution_complete", messages[-1]
        assert (messages[-1]["status"], messages[-1]["error"]["name"]) == ("error", "ExecutionLost")
    finally:
        await ws.close()

    def of_ours(events: list[dict[str, Any]]) -> list[str]:
        return sorted(e["event"] for e in events if e.get("executionId") == execution_id)

    # Other tests' executions in this sandbox may have failed too: wait for this one's.
    events = await audit(api, lambda got: "failed" in of_ours(got), sandboxId=sandbox_id)
    assert of_ours(events) == ["failed", "started"]


async def test_a_synchronous_execution_whose_exec_svc_is_killed_is_answered_503_soon(
    stack: Stack, api: httpx.AsyncClient, sandbox_id: str
) -> None:
    """Its caller is told once exec-svc has been silent for the bus's keepalive silence,
    not when the execution's timeout (600 s) ends; the execution is then lost (above)."""
    await stack.wait_ready("exec-svc")

    def started(events: list[dict[str, Any]]) -> bool:
        return any((e["kind"], e["event"]) == ("exec", "started") for e in events)

    since = datetime.now(UTC).isoformat()  # only this execution starts after
    body = {"type": "code", "content": "import time\ntime.sleep(600)", "timeout": 600}
    running = asyncio.create_task(
        api.post(f"/sandboxes/{sandbox_id}/execute", json=body, timeout=700)
    )
    # Announced alone after its first 50 ms: exec-svc has it.
    assert started(await audit(api, started, sandboxId=sandbox_id, since=since))
    stack.kill("exec-svc")
    answered = await asyncio.wait_for(running, 3 * SILENCE)
    assert answered.status_code == 503, answered.text
    assert "stopped during the request" in answered.json()["error"]["message"]
    await stack.wait_ready("exec-svc")
    again = await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": "print(1)"}
    )
    assert again.json()["stdout"] == "1\n", again.text


async def test_stdin_still_works_after_exec_svc_restarts(stack: Stack, sandbox_id: str) -> None:
    await stack.wait_ready("exec-svc")
    ws = await connect(ws_url(stack, sandbox_id), stack.admin_key)
    try:
        execution_id = await execute(ws, "read line; echo got:$line", mode="command", stdin=True)
        stdin = {"type": "stdin", "executionId": execution_id, "content": "hello\n", "eof": True}
        await ws.send(json.dumps(stdin))
        messages = await until_terminal(ws, execution_id)
        assert text_of(messages, "stdout") == "got:hello\n"
    finally:
        await ws.close()


@pytest.mark.parametrize("shared", [False, True], ids=["own", "shared"])
async def test_a_live_follower_that_overflows_replays_what_it_lost_in_order(
    stack: Stack, shared: bool
) -> None:
    """A slow reader's live subscription (its own, or its share of a session's) drops
    messages past its buffer (8 MiB): the follower sees the gap in `seq` and replays the
    rest from JetStream, each once."""
    connection = await nats.connect(**stack.nats_options("api-gateway"))  # the follower's
    publisher = await nats.connect(**stack.nats_options("exec-svc"))  # the output's
    sandbox_id, execution_id = "sb-relaytest00000", new_execution_id()
    subject = subjects.output(sandbox_id, execution_id)
    outputs = await Outputs.open(connection, sandbox_id) if shared else None
    if outputs is not None:
        follower = Follower.shared(connection, outputs, sandbox_id, execution_id, grace=30)
    else:
        follower = await Follower.live(connection, sandbox_id, execution_id, grace=30)
    try:
        js = publisher.jetstream()
        now = datetime.now(UTC)
        await js.publish(subject, _wire(StartedMarker(seq=1, timeout=60, started_at=now)))
        chunk = "x" * (512 * 1024)
        for seq in range(2, 42):  # 20 MiB while nobody reads: the subscription overflows
            await js.publish(
                subject, _wire(OutputChunk(seq=seq, stream="stdout", content=chunk, timestamp=0))
            )
        result = ExecutionResult(
            execution_id=execution_id,
            sandbox_id=sandbox_id,
            status=ExecutionStatus.COMPLETED,
            exit_code=0,
            stdout="",
            stderr="",
            started_at=now,
            completed_at=now,
            duration_ms=1.0,
        )
        await js.publish(subject, _wire(EndedMarker(seq=42, result=result)))
        received = [message async for message in follower.messages(0, wait=30)]
    finally:
        await follower.close()
        if outputs is not None:
            await outputs.close()
        await connection.close()
        await publisher.close()
    chunks = [message for message in received if isinstance(message, ServerOutput)]
    assert [message.seq for message in chunks] == list(range(2, 42))
    assert all(message.content == chunk for message in chunks)
    assert (received[0].type, received[-1].type) == ("execution_start", "execution_complete")


async def test_every_message_the_socket_sends_is_a_typed_server_message(
    ws: ClientConnection,
) -> None:
    """The wire format is the `ServerMessage` contracts, field for field (the contracts
    forbid nothing extra, so the check is that the socket sends no field they lack)."""
    await ws.send(json.dumps({"type": "ping", "timestamp": 7}))
    await ws.send(json.dumps({"type": "nonsense"}))
    first = await execute(ws, "print('out')\n6 * 7")
    cancelled = await execute(ws, "sleep 30", mode="command")
    await ws.send(json.dumps({"type": "cancel", "executionId": cancelled}))
    messages = [await receive(ws), await receive(ws)]
    ended: set[str] = set()
    while ended != {first, cancelled}:
        messages.append(message := await receive(ws))
        if message["type"] in TERMINAL:
            ended.add(message["executionId"])
    kinds = set()
    for message in messages:
        typed = _SERVER_MESSAGE.validate_python(message)
        assert typed.model_dump(mode="json", by_alias=True, exclude_none=True) == message
        kinds.add(typed.type)
    assert kinds >= {"pong", "error", "execution_start", "output", "display"}
    assert kinds >= {"execution_complete", "execution_cancelled"}


def _wire(message: Contract) -> bytes:
    return message.model_dump_json(by_alias=True).encode()
