"""Live execution over WebSocket: first-output latency, 10 MiB end to end, and many
concurrent streaming clients, through the public API. Prints the figures.

    python bench/streaming.py [--runs 100] [--mib 10] [--clients 100]

- first output: a program that prints at once; from sending `execute` to receiving the
  first `output` message (code mode and command mode), median/p99 over --runs.
- throughput: a program writing --mib MiB to stdout; from sending `execute` to
  `execution_complete`, every byte counted.
- concurrency: --clients WebSocket clients, each on its own sandbox, each streaming a
  short program at the same moment; errors and time to `execution_complete`, p50/p99.

Starts its own embedded stack (127.0.0.1 only) in a temporary directory and stops it.
"""

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import httpx
import websockets
from harness import percentile, running_stack
from websockets.asyncio.client import ClientConnection

from llmsafespace.contracts import new_execution_id
from llmsafespace.devstack import Stack

RESOURCES = {"memory": "256Mi"}
WAIT = 120.0  # seconds any one message may take before the run counts as failed
TERMINAL = {"execution_complete", "execution_cancelled", "error"}
SHORT_PROGRAM = "for i in range(100):\n    print(i, flush=True)"


def report(label: str, samples: list[float]) -> None:
    if not samples:
        print(f"{label:<28} no samples")
        return
    print(
        f"{label:<28} n={len(samples):<4} median={statistics.median(samples):8.1f} ms"
        f"  p99={percentile(samples, 0.99):8.1f} ms  max={max(samples):8.1f} ms"
    )


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
    return message


async def send_execute(ws: ClientConnection, content: str, mode: str = "code") -> str:
    execution_id = new_execution_id()
    body = {
        "type": "execute",
        "executionId": execution_id,
        "mode": mode,
        "content": content,
        "timeout": 300,
    }
    await ws.send(json.dumps(body))
    return execution_id


async def first_output(ws: ClientConnection, content: str, mode: str) -> float:
    """ms from sending `execute` to the first `output`; then reads to the terminal message."""
    started = time.perf_counter()
    execution_id = await send_execute(ws, content, mode)
    first: float | None = None
    while True:
        message = await receive(ws)
        if message.get("executionId") != execution_id:
            continue
        if message["type"] == "output" and first is None:
            first = (time.perf_counter() - started) * 1000
        if message["type"] in TERMINAL:
            if message["type"] != "execution_complete" or first is None:
                raise RuntimeError(f"unexpected end {message}")
            return first


async def bulk(ws: ClientConnection, mib: int) -> tuple[float, int, bool]:
    """(ms, bytes received, truncated) for a program writing `mib` MiB to stdout."""
    code = (
        "import sys\n"
        "block = ('x' * 1023 + '\\n') * 64\n"
        f"for _ in range({mib * 16}):\n"
        "    sys.stdout.write(block)\n"
        "sys.stdout.flush()\n"
    )
    started = time.perf_counter()
    execution_id = await send_execute(ws, code)
    received = 0
    while True:
        message = await receive(ws)
        if message.get("executionId") != execution_id:
            continue
        if message["type"] == "output":
            received += len(message["content"].encode())
        if message["type"] in TERMINAL:
            elapsed = (time.perf_counter() - started) * 1000
            if message["type"] != "execution_complete":
                raise RuntimeError(f"unexpected end {message}")
            return elapsed, received, bool(message.get("outputTruncated"))


async def one_client(url: str, key: str, gate: asyncio.Event) -> float:
    ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"})
    try:
        await gate.wait()
        started = time.perf_counter()
        execution_id = await send_execute(ws, SHORT_PROGRAM)
        lines = 0
        while True:
            message = await receive(ws)
            if message.get("executionId") != execution_id:
                continue
            if message["type"] == "output":
                lines += message["content"].count("\n")
            if message["type"] in TERMINAL:
                if message["type"] != "execution_complete" or lines != 100:
                    raise RuntimeError(f"{message['type']} after {lines} lines")
                return (time.perf_counter() - started) * 1000
    finally:
        await ws.close()


async def create_sandboxes(api: httpx.AsyncClient, count: int) -> list[str]:
    limit = asyncio.Semaphore(8)

    async def create() -> str | None:
        async with limit:
            response = await api.post("/sandboxes", json={"resources": RESOURCES})
        return response.json()["id"] if response.status_code == 201 else None

    created = await asyncio.gather(*(create() for _ in range(count)))
    return [sandbox for sandbox in created if sandbox]


async def concurrency(stack: Stack, api: httpx.AsyncClient, clients: int) -> None:
    sandboxes = await create_sandboxes(api, clients)
    if len(sandboxes) < clients:
        print(f"concurrency: only {len(sandboxes)} of {clients} sandboxes could be created")
    try:
        base = stack.api_url.replace("http://", "ws://")
        gate = asyncio.Event()
        tasks = [
            asyncio.create_task(
                one_client(f"{base}/sandboxes/{sandbox}/stream", stack.admin_key, gate)
            )
            for sandbox in sandboxes
        ]
        await asyncio.sleep(1.0)  # let every socket open before the common start
        wall = time.perf_counter()
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        wall_ms = (time.perf_counter() - wall) * 1000
        times = [r for r in results if isinstance(r, float)]
        errors = [r for r in results if isinstance(r, BaseException)]
        report(f"{len(sandboxes)} concurrent clients", times)
        print(f"{'':<28} errors={len(errors)}  all done in {wall_ms:.0f} ms")
        for error in errors[:3]:
            print(f"{'':<28} e.g. {error!r}")
    finally:
        limit = asyncio.Semaphore(8)

        async def delete(sandbox: str) -> None:
            async with limit:
                await api.delete(f"/sandboxes/{sandbox}")

        await asyncio.gather(*(delete(sandbox) for sandbox in sandboxes))


async def main(runs: int, mib: int, clients: int) -> None:
    async with running_stack() as stack:
        headers = {"Authorization": f"Bearer {stack.admin_key}"}
        async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=120) as api:
            created = await api.post("/sandboxes", json={"resources": RESOURCES})
            assert created.status_code == 201, created.text
            sandbox = created.json()["id"]
            url = stack.api_url.replace("http://", "ws://") + f"/sandboxes/{sandbox}/stream"
            auth = {"Authorization": f"Bearer {stack.admin_key}"}
            async with websockets.connect(url, additional_headers=auth) as ws:
                for _ in range(3):  # warm up the interpreter, the bus and the sockets
                    await first_output(ws, "print(1)", "code")
                code = [await first_output(ws, "print(1)", "code") for _ in range(runs)]
                command = [await first_output(ws, "echo 1", "command") for _ in range(runs)]
                report("first output (code)", code)
                report("first output (command)", command)
                await bulk(ws, 1)  # warm up
                samples = []
                for _ in range(5):
                    elapsed, received, truncated = await bulk(ws, mib)
                    complete = received == mib * 2**20 and not truncated
                    if not complete:
                        print(f"{mib} MiB run incomplete: {received} bytes, truncated={truncated}")
                    samples.append(elapsed)
                report(f"{mib} MiB end to end", samples)
                rate = mib / (statistics.median(samples) / 1000)
                print(f"{'':<28} ~{rate:.1f} MiB/s (median run)")
            await api.delete(f"/sandboxes/{sandbox}")
            await concurrency(stack, api, clients)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="first-output samples (1-1000)")
    parser.add_argument("--mib", type=int, default=10, help="MiB for the bulk run (1-60)")
    parser.add_argument("--clients", type=int, default=100, help="concurrent clients (1-200)")
    arguments = parser.parse_args()
    asyncio.run(
        main(
            max(1, min(1000, arguments.runs)),
            max(1, min(60, arguments.mib)),
            max(1, min(200, arguments.clients)),
        )
    )
