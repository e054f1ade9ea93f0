"""A gateway replica killed (SIGKILL) while clients stream: each client resumes on another
replica from the last message it saw, and gets the rest with no gap and no duplicate."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import websockets

from llmsafespace.contracts import new_execution_id
from llmsafespace.devstack import Stack

from .conftest import Replica

pytestmark = pytest.mark.stack

WAIT = 60  # seconds any single expected message may take on a loaded 2-core machine
CLIENTS = 3
LINES = 400


def stream_url(api_url: str, sandbox_id: str) -> str:
    return f"{api_url.replace('http://', 'ws://')}/sandboxes/{sandbox_id}/stream"


async def receive(ws: websockets.ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return message


async def until_cut(ws: websockets.ClientConnection) -> list[dict[str, Any]]:
    """What was already on its way to the client when its gateway died, then the cut."""
    messages = []
    try:
        while True:
            messages.append(await receive(ws))
    except websockets.ConnectionClosed:
        return messages


async def test_clients_of_a_killed_gateway_resume_on_another_with_no_gap(
    stack: Stack, api: httpx.AsyncClient, gateway_replica: Callable[..., Replica]
) -> None:
    replica = gateway_replica()
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    code = f"import time\nfor i in range({LINES}):\n    print(i, flush=True)\n    time.sleep(0.01)"
    sandboxes = []
    for _ in range(CLIENTS):
        created = await api.post("/sandboxes", json={"timeout": 300})
        assert created.status_code == 201, created.text
        sandboxes.append(created.json()["id"])

    clients = []
    for sandbox_id in sandboxes:
        ws = await websockets.connect(
            stream_url(replica.url, sandbox_id), additional_headers=headers
        )
        execution_id = new_execution_id()
        execute = {"type": "execute", "executionId": execution_id, "mode": "code"}
        await ws.send(json.dumps(execute | {"content": code, "timeout": 120}))
        clients.append((sandbox_id, execution_id, ws, []))
    for _, _, ws, received in clients:  # each client has seen some output, not all
        while sum(m["type"] == "output" for m in received) < 3:
            received.append(await receive(ws))

    replica.kill()

    for sandbox_id, execution_id, ws, received in clients:
        received.extend(await until_cut(ws))
        await ws.close()
        last_seq = max(m["seq"] for m in received if "seq" in m)
        async with websockets.connect(
            stream_url(stack.api_url, sandbox_id), additional_headers=headers
        ) as other:
            await other.send(
                json.dumps({"type": "resume", "executionId": execution_id, "lastSeq": last_seq})
            )
            rest = []
            while not rest or rest[-1]["type"] not in ("execution_complete", "error"):
                message = await receive(other)
                if message.get("executionId") == execution_id:
                    rest.append(message)
        assert rest[-1]["type"] == "execution_complete", rest[-1]
        seqs = [m["seq"] for m in received + rest if "seq" in m]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap or a duplicate"
        stdout = "".join(m["content"] for m in received + rest if m["type"] == "output")
        assert stdout.split() == [str(i) for i in range(LINES)]
    for sandbox_id in sandboxes:
        await api.delete(f"/sandboxes/{sandbox_id}")
