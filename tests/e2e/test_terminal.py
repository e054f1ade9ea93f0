"""Interactive terminals over `GET /api/v1/sandboxes/{id}/terminal`, against the stack:
a real shell on a real PTY inside a real sandbox, reached through gateway, bus, exec-svc
and agent."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedOK, InvalidStatus

pytestmark = pytest.mark.stack
WAIT = 60.0  # a bound on waiting for an expected screen (a hang fails, never a slow run)


@asynccontextmanager
async def terminal(
    stack, sandbox_id: str, key: str | None = None, api_url: str | None = None, **query: Any
) -> AsyncIterator[ClientConnection]:
    base = api_url or stack.api_url
    url = base.replace("http", "ws", 1) + f"/sandboxes/{sandbox_id}/terminal"
    if query:
        url += "?" + urlencode(query)
    headers = {"Authorization": f"Bearer {key or stack.admin_key}"}
    async with connect(url, additional_headers=headers, max_size=None) as socket:
        yield socket


async def receive(socket: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        message: dict[str, Any] = json.loads(await socket.recv())
    return message


async def screen_until(socket: ClientConnection, text: str) -> str:
    """Output up to and including `text` (other messages are kept out of it)."""
    seen = ""
    while text not in seen:
        try:
            message = await receive(socket)
        except TimeoutError:
            raise AssertionError(f"never saw {text!r}; the screen: {seen!r}") from None
        assert message["type"] in ("output", "error", "pong"), message
        if message["type"] == "output":
            seen += message["data"]
    return seen


async def type_in(socket: ClientConnection, keys: str) -> None:
    await socket.send(json.dumps({"type": "input", "data": keys}))


async def ready(socket: ClientConnection) -> str:
    message = await receive(socket)
    assert message["type"] == "ready", message
    terminal_id: str = message["terminalId"]
    return terminal_id


@pytest.fixture(scope="module")
async def sandbox(stack) -> AsyncIterator[str]:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
        created = await api.post("/sandboxes", json={"timeout": 900})
        assert created.status_code == 201, created.text
        identifier: str = created.json()["id"]
        yield identifier
        await api.delete(f"/sandboxes/{identifier}")


async def test_the_shell_has_a_tty_whose_size_follows_resizes(stack, sandbox: str) -> None:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
        executed = await api.post(
            f"/sandboxes/{sandbox}/execute", json={"type": "command", "content": "id -u"}
        )
    uid = executed.json()["stdout"].strip()
    async with terminal(stack, sandbox, cols=100, rows=30) as socket:
        assert (await ready(socket)).startswith("term-")
        await type_in(socket, "tty; echo uid=$(id -u); echo tty-$((40 + 2))\n")
        screen = await screen_until(socket, "tty-42")
        assert "/dev/pts/" in screen
        assert f"uid={uid}\r\n" in screen  # the user executions run as
        await type_in(socket, "stty size; echo size-$((1 + 1))\n")
        assert "30 100" in await screen_until(socket, "size-2")
        await socket.send(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
        await type_in(socket, "stty size; echo size-$((2 + 1))\n")
        assert "40 120" in await screen_until(socket, "size-3")


async def test_ctrl_c_interrupts_the_foreground_process(stack, sandbox: str) -> None:
    async with terminal(stack, sandbox) as socket:
        await ready(socket)
        # The foreground process itself says it started (then becomes `sleep`): a ^C
        # sent once that is seen cannot reach the shell between two commands instead.
        await type_in(socket, "sh -c 'echo start-$((1 + 1)); exec sleep 100'\n")
        await screen_until(socket, "start-2")
        await type_in(socket, "\x03")
        await type_in(socket, "echo after-$((6 * 7))\n")
        await screen_until(socket, "after-42")


FORK_BOMB = (
    "python3 -c 'import os, time\n"
    "children, err = [], None\n"
    "try:\n"
    "    for _ in range(2000):\n"
    "        pid = os.fork()\n"
    "        if pid == 0:\n"
    "            time.sleep(30)\n"
    "            os._exit(0)\n"
    "        children.append(pid)\n"
    "except OSError as e:\n"
    "    err = e.errno\n"
    "for pid in children:\n"
    "    os.kill(pid, 9)\n"
    "    os.waitpid(pid, 0)\n"
    'print("for" + "ked", len(children), "err" + "no", err)\'\n'
)


@pytest.mark.local_driver("the fake kubelet runs agents as host processes, without a pids limit")
async def test_a_fork_bomb_in_a_terminal_is_contained(stack, sandbox: str) -> None:
    async with terminal(stack, sandbox) as socket:
        await ready(socket)
        await type_in(socket, FORK_BOMB)
        await type_in(socket, "echo alive-$((1 + 1))\n")  # runs once the bomb is over
        screen = await screen_until(socket, "alive-2")
        line = screen[screen.rindex("forked") :].split()
        forked, errno = int(line[1]), line[3]
        assert errno == "11"  # EAGAIN: the pids limit
        assert forked < 256


async def test_a_terminal_is_reattached_with_its_scrollback(stack, sandbox: str) -> None:
    async with terminal(stack, sandbox) as socket:
        terminal_id = await ready(socket)
        await type_in(socket, "x=remembered; echo marker-$((3 * 4))\n")
        await screen_until(socket, "marker-12")
    async with terminal(stack, sandbox, terminalId=terminal_id) as socket:
        assert await ready(socket) == terminal_id
        replay = await receive(socket)
        assert replay["type"] == "output"
        assert "marker-12" in replay["data"]
        await type_in(socket, "echo $x-$((5 + 5))\n")
        await screen_until(socket, "remembered-10")


async def test_another_gateway_replica_reattaches_the_terminal(
    stack, sandbox: str, start_gateway
) -> None:
    """The terminal lives with exec-svc and crosses the bus: a gateway that never saw it
    serves it."""
    other = start_gateway()
    async with terminal(stack, sandbox) as socket:
        terminal_id = await ready(socket)
        await type_in(socket, "y=elsewhere; echo first-$((4 * 4))\n")
        await screen_until(socket, "first-16")
    async with terminal(stack, sandbox, api_url=other, terminalId=terminal_id) as socket:
        assert await ready(socket) == terminal_id
        assert "first-16" in (await receive(socket))["data"]
        await type_in(socket, "echo $y-$((5 * 5))\n")
        await screen_until(socket, "elsewhere-25")


async def test_bad_frames_get_errors_and_the_terminal_lives_on(stack, sandbox: str) -> None:
    async with terminal(stack, sandbox) as socket:
        await ready(socket)
        bad = [
            b"\x00\xff\xfe garbage",
            "not json",
            json.dumps([1, 2]),
            json.dumps({"type": "resize", "cols": 0, "rows": 24}),
            json.dumps({"type": "resize", "cols": 100000, "rows": 24}),
            json.dumps({"type": "resize", "cols": "80", "rows": 24}),
            json.dumps({"type": "input", "data": "x" * 100_000}),
            json.dumps({"type": "input"}),
        ]
        for frame in bad:
            await socket.send(frame)
            message = await receive(socket)
            while message["type"] == "output":  # the prompt may still be arriving
                message = await receive(socket)
            assert message["type"] == "error", (frame, message)
            assert message["code"] == "invalid_message"
        await socket.send(json.dumps({"type": "launch"}))  # well-formed, unknown: as /stream
        assert (await receive_kind(socket, "error"))["code"] == "unknown_message_type"
        await socket.send(json.dumps({"type": "ping"}))
        assert (await receive_kind(socket, "pong"))["type"] == "pong"
        await type_in(socket, "echo ok-$((2 + 3))\n")
        await screen_until(socket, "ok-5")


async def receive_kind(socket: ClientConnection, kind: str) -> dict[str, Any]:
    while (message := await receive(socket))["type"] != kind:
        assert message["type"] == "output", message
    return message


async def test_refusals_before_the_upgrade(stack, sandbox: str, second_user_key: str) -> None:
    async with terminal(stack, sandbox) as socket:
        terminal_id = await ready(socket)
    refusals = [
        ({"key": second_user_key}, 404),
        ({"key": second_user_key, "terminalId": terminal_id}, 404),
        ({"key": "lsp_not-a-key"}, 401),
        ({"cols": 0}, 400),
        ({"rows": 100000}, 400),
        ({"cols": "\u00b2"}, 400),  # a digit to `str.isdigit`, not to int()
        ({"rows": "\u0665"}, 400),  # ARABIC-INDIC FIVE: int() takes it, a size is ASCII
        ({"terminalId": "term-doesnotexist00"}, 404),
        ({"terminalId": "../etc"}, 404),
    ]
    for arguments, status in refusals:
        key = arguments.pop("key", None)
        with pytest.raises(InvalidStatus) as refused:
            async with terminal(stack, sandbox, key, **arguments):
                pass
        assert refused.value.response.status_code == status, arguments
        body = json.loads(refused.value.response.body or b"{}")
        assert "code" in body.get("error", {}), arguments


async def test_terminating_the_sandbox_ends_its_terminals(stack) -> None:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
        created = await api.post("/sandboxes", json={"timeout": 300})
        assert created.status_code == 201, created.text
        sandbox_id = created.json()["id"]
        async with terminal(stack, sandbox_id) as first, terminal(stack, sandbox_id) as second:
            await ready(first)
            await ready(second)
            await type_in(first, "echo up-$((1 + 1))\n")
            await screen_until(first, "up-2")
            assert (await api.delete(f"/sandboxes/{sandbox_id}")).is_success
            for socket in (first, second):
                assert (await receive_kind(socket, "exit"))["type"] == "exit"


async def test_a_terminal_whose_exec_svc_dies_is_told_it_ended(stack, sandbox: str) -> None:
    """exec-svc killed: nobody hangs the terminal up or publishes its exit, so the
    gateway's keepalive, finding that nobody holds it, ends the socket with an error and
    an exit (-1) instead of leaving it silent."""
    async with terminal(stack, sandbox) as socket:
        await ready(socket)
        await type_in(socket, "echo alive-$((1 + 1))\n")
        await screen_until(socket, "alive-2")
        stack.kill("exec-svc")
        try:
            messages = [await receive(socket)]
            while messages[-1]["type"] == "output":
                messages.append(await receive(socket))
            messages.append(await receive(socket))
        finally:
            await stack.wait_ready("exec-svc")
        with pytest.raises(ConnectionClosedOK):
            await receive(socket)
    error, ended = messages[-2:]
    assert error["type"] == "error", messages
    assert error["code"] == "not_found", error
    assert "terminal" in error["message"], error
    assert ended == {"type": "exit", "exitCode": -1}, messages
