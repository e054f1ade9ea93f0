"""A WebSocket message fuzzer against `/sandboxes/{id}/stream`: random JSON, every message
type with fields of the wrong type, binary and non-UTF-8 frames, deep nesting, frames just
under and over the size limit. The gateway answers each with an `error` message (never an
internal error) or a normal reply, stays responsive (a `ping` gets its `pong`), does not
crash and does not grow its memory without bound."""

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from llmsafespace.devstack import Stack

pytestmark = pytest.mark.stack

SEED = 20261129
MESSAGES = 400  # fuzzed messages in all
WAIT = 30  # seconds an answer may take on a loaded 2-core machine before it is a hang
MAX_FRAME = 1024 * 1024  # the gateway's WebSocket message limit (larger: closed with 1009)
RSS_GROWTH_LIMIT = 64 * 1024 * 1024
TYPES = ["execute", "cancel", "resume", "stdin", "ping", "pong", "error", "", "EXECUTE"]
FIELDS = [
    "type",
    "executionId",
    "mode",
    "content",
    "timeout",
    "idleTimeout",
    "lastSeq",
    "eof",
    "stdin",
    "timestamp",
    "env",
    "stream",
]


def scalar(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            True,
            False,
            0,
            -1,
            2**63,
            -(2**70),
            1.5,
            float("1e308"),
            "",
            "exec-" + "a" * rng.randint(0, 80),
            "sb-../../etc",
            "\u0000\ud7ff\U0001f600",
            "x" * rng.randint(0, 5000),
            rng.choice(TYPES),
        ]
    )


def value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.6:
        return scalar(rng)
    if roll < 0.8:
        return [value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(FIELDS): value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def message(rng: random.Random) -> str | bytes:
    """One fuzzed frame: mostly a plausible message with some fields wrong."""
    kind = rng.random()
    if kind < 0.05:
        return rng.randbytes(rng.randint(1, 200))  # binary frame
    if kind < 0.10:
        return rng.choice(["", "{", "[]", "null", "1", '"ping"', "{'type': 'ping'}", "\ufffd"])
    if kind < 0.13:
        return "[" * 5000 + "]" * 5000  # deep nesting
    if kind < 0.25:
        return json.dumps(value(rng))
    body: dict[str, Any] = {"type": rng.choice(TYPES[:5])}
    for field in rng.sample(FIELDS[1:], rng.randint(0, 5)):
        body[field] = value(rng)
    return json.dumps(body)


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def connect(stack: Stack, sandbox_id: str) -> ClientConnection:
    url = f"{stack.api_url.replace('http://', 'ws://')}/sandboxes/{sandbox_id}/stream"
    return await websockets.connect(
        url, additional_headers={"Authorization": f"Bearer {stack.admin_key}"}
    )


async def answers_ping(ws: ClientConnection, stamp: int) -> list[dict[str, Any]]:
    """Send a ping; return every message received before its pong (which must come)."""
    await ws.send(json.dumps({"type": "ping", "timestamp": stamp}))
    seen = []
    while True:
        received = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        if received == {"type": "pong", "timestamp": stamp}:
            return seen
        seen.append(received)


def check(replies: list[dict[str, Any]]) -> None:
    for reply in replies:
        assert isinstance(reply, dict), reply
        assert reply.get("type") in {
            "error",
            "pong",
            "execution_start",
            "output",
            "execution_complete",
            "execution_cancelled",
        }, reply
        if reply["type"] == "error":
            assert reply.get("code") not in (None, "internal_error"), reply
            assert reply.get("message"), reply


@pytest.fixture
async def sandbox_id(stack: Stack) -> Any:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
        created = await api.post("/sandboxes", json={"timeout": 600})
        assert created.status_code == 201, created.text
        yield created.json()["id"]
        await api.delete(f"/sandboxes/{created.json()['id']}")


async def test_fuzzed_stream_messages_get_errors_never_a_crash_a_hang_or_unbounded_memory(
    stack: Stack, sandbox_id: str
) -> None:
    gateway = stack.services["api-gateway"].process
    assert gateway is not None
    rng = random.Random(SEED)
    ws = await connect(stack, sandbox_id)
    await answers_ping(ws, 0)
    baseline = rss(gateway.pid)
    try:
        batch: list[str | bytes] = []
        for sent in range(1, MESSAGES + 1):
            batch.append(message(rng))
            await ws.send(batch[-1])
            if sent % 10 == 0:
                try:
                    check(await answers_ping(ws, sent))
                except websockets.ConnectionClosed as exc:
                    shown = [repr(frame)[:200] for frame in batch]
                    raise AssertionError(f"closed ({exc}) after: {shown}") from exc
                batch.clear()
        # A frame at the limit is read (and refused as a message); one past it closes 1009.
        await ws.send(json.dumps({"type": "execute", "content": "x" * (MAX_FRAME - 100)}))
        check(await answers_ping(ws, MESSAGES + 1))
        for _ in range(3):
            await ws.send("y" * (MAX_FRAME + 1))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await answers_ping(ws, MESSAGES + 2)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1009
            ws = await connect(stack, sandbox_id)
        # Still a working stream: a real execution runs to completion.
        await ws.send(
            json.dumps(
                {
                    "type": "execute",
                    "executionId": "exec-fuzzafterwards1",
                    "mode": "code",
                    "content": "print('alive')",
                }
            )
        )
        replies = []
        while not replies or replies[-1]["type"] not in ("execution_complete", "error"):
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), WAIT)))
        assert replies[-1]["type"] == "execution_complete", replies[-1]
    finally:
        await ws.close()
    assert gateway.poll() is None, "the gateway crashed"
    grown = rss(gateway.pid) - baseline
    assert grown < RSS_GROWTH_LIMIT, f"the gateway grew by {grown / 2**20:.0f} MiB"
