"""Both WebSocket clients the benchmarks drive, with the same socket options: ours
(`/sandboxes/{id}/stream`) and the Jupyter kernel protocol over Kernel Gateway's
`/api/kernels/{id}/channels`. Each returns the same `Outcome` for one execution."""

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from llmsafespace.contracts import new_execution_id

WAIT = 120.0  # seconds any one message may take before the run counts as failed
TERMINAL = {"execution_complete", "execution_cancelled", "error"}


@dataclass(frozen=True)
class Outcome:
    """One execution as its client saw it: ms to the first output and to the end, and
    how many PNG images it displayed."""

    first_output_ms: float | None
    total_ms: float
    output_bytes: int
    truncated: bool = False
    images: int = 0


async def connect(url: str, headers: dict[str, str]) -> ClientConnection:
    """The same options for both sides: no compression (loopback: it only costs CPU), no
    message size cap; asyncio sets TCP_NODELAY on the client socket."""
    return await websockets.connect(
        url, additional_headers=headers, compression=None, max_size=None, open_timeout=60
    )


async def _receive(ws: ClientConnection, deadline: asyncio.Timeout) -> dict[str, Any]:
    """The next message, within WAIT seconds: `deadline` (the caller's `asyncio.timeout`)
    is moved on, where `wait_for` would wrap every receive in a task of its own."""
    deadline.reschedule(asyncio.get_running_loop().time() + WAIT)
    message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def run_streamed(ws: ClientConnection, content: str, mode: str = "code") -> Outcome:
    """Run one execution over our socket and read it to `execution_complete`."""
    started = time.perf_counter()
    execution_id = new_execution_id()
    body = {
        "type": "execute",
        "executionId": execution_id,
        "mode": mode,
        "content": content,
        "timeout": 300,
    }
    await ws.send(json.dumps(body))
    first: float | None = None
    received = images = 0
    async with asyncio.timeout(None) as deadline:
        while True:
            message = await _receive(ws, deadline)
            if message.get("executionId") != execution_id:
                continue
            kind = message["type"]
            if kind == "output":
                if first is None:
                    first = (time.perf_counter() - started) * 1000
                received += len(message["content"].encode())
            elif kind == "display" and "image/png" in message["data"]:
                images += 1
            elif kind in TERMINAL:
                if kind != "execution_complete" or message.get("exitCode", 0) != 0:
                    raise RuntimeError(f"execution ended with {message}")
                total = (time.perf_counter() - started) * 1000
                truncated = bool(message.get("outputTruncated"))
                return Outcome(first, total, received, truncated, images)


class KernelChannels:
    """One kernel's `channels` WebSocket: Jupyter messages as JSON (the legacy protocol,
    which Kernel Gateway speaks when the client asks for no subprotocol)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._session = uuid.uuid4().hex

    async def execute(self, code: str) -> Outcome:
        """An `execute_request`, read until its `execute_reply` and the kernel's return to
        idle (what jupyter_client's `execute_interactive` waits for)."""
        started = time.perf_counter()
        msg_id = uuid.uuid4().hex
        request = {
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "username": "bench",
                "session": self._session,
                "version": "5.3",
                "date": datetime.now(UTC).isoformat(),
            },
            "parent_header": {},
            "metadata": {},
            "content": {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            "channel": "shell",
            "buffers": [],
        }
        await self.ws.send(json.dumps(request))
        first: float | None = None
        received = images = 0
        replied = idle = False
        async with asyncio.timeout(None) as deadline:
            while not (replied and idle):
                message = await _receive(self.ws, deadline)
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream":
                    if first is None:
                        first = (time.perf_counter() - started) * 1000
                    received += len(content["text"].encode())
                elif kind == "display_data" and "image/png" in content.get("data", {}):
                    images += 1
                elif kind == "execute_reply":
                    if content.get("status") != "ok":
                        raise RuntimeError(f"kernel replied {content}")
                    replied = True
                elif kind == "status" and content.get("execution_state") == "idle":
                    idle = True
        return Outcome(first, (time.perf_counter() - started) * 1000, received, images=images)

    async def close(self) -> None:
        await self.ws.close()
