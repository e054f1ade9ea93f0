"""A streamed execution whose exec-svc dies: the client is told, the sandbox lives on."""

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from llmsafespace.contracts import new_execution_id
from llmsafespace.devstack import Stack

pytestmark = pytest.mark.stack

GRACE = 2  # seconds the test gateway waits past an execution's timeout
WAIT = 60


def ws_url(stack: Stack, sandbox_id: str, api_url: str | None = None) -> str:
    base = (api_url or stack.api_url).replace("http://", "ws://")
    return f"{base}/sandboxes/{sandbox_id}/stream"


async def connect(url: str, key: str) -> ClientConnection:
    return await websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"})


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return message


async def until_terminal(ws: ClientConnection, execution_id: str) -> list[dict[str, Any]]:
    messages = []
    while True:
        message = await receive(ws)
        if message.get("executionId") != execution_id:
            continue
        messages.append(message)
        if message["type"] in ("execution_complete", "execution_cancelled", "error"):
            return messages


async def execute(ws: ClientConnection, content: str, mode: str = "code", **extra: Any) -> str:
    execution_id = new_execution_id()
    body = {"type": "execute", "executionId": execution_id, "mode": mode, "content": content}
    await ws.send(json.dumps(body | extra))
    return execution_id


def text_of(messages: list[dict[str, Any]], stream: str) -> str:
    return "".join(
        m["content"] for m in messages if m["type"] == "output" and m["stream"] == stream
    )


async def test_killing_exec_svc_mid_stream_ends_with_execution_failed_and_the_sandbox_recovers(
    stack: Stack, sandbox_id: str, start_gateway: Callable[..., str]
) -> None:
    gateway = start_gateway(GATEWAY_STREAM_GRACE=str(GRACE))
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
        assert waited < 3 + GRACE + 5, f"the failure took {waited:.1f} s to report"
        assert [m["type"] for m in messages].count("error") == 1

        await stack.wait_ready("exec-svc")
        again = await execute(ws, "print('back')", timeout=30)
        after = await until_terminal(ws, again)
        assert after[-1]["type"] == "execution_complete", after[-1]
        assert text_of(after, "stdout") == "back\n"
    finally:
        await ws.close()


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
