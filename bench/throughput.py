"""Figure 3: 1, 20 and 100 concurrent clients, each on its own sandbox with its own
connection, running `print(1)` back to back for a fixed time: executions per second,
latency p50/p99, errors. Ours over REST (through `rest_client`: the SDK's httpx would
load the same two cores with ~2 ms of its own per request) and over the WebSocket;
Kernel Gateway's clients each on their own kernel, over its channels."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial

import httpx
from context import Bench
from harness import PRINT1, Stats, sandboxes, stream_url
from report import Figure, Target
from rest_client import RestClient
from stream_client import connect, run_streamed

Run = Callable[[], Awaitable[object]]
TARGET_CLIENTS = 20


@dataclass
class Load:
    """What the clients of one level did inside the measured window."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def drive(runs: list[Run], seconds: float) -> Load:
    """Every client calls its `run` back to back until `seconds` have passed."""
    load = Load()
    for run in runs:  # one untimed call each: interpreters, connections, caches
        try:
            await run()
        except Exception as exc:
            load.errors.append(f"warm-up: {exc!r}"[:200])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds

    async def client(run: Run) -> None:
        while loop.time() < deadline:
            started = time.perf_counter()
            try:
                await run()
            except Exception as exc:  # counted, not fatal: errors are a figure too
                load.errors.append(repr(exc)[:200])
                await asyncio.sleep(0.01)
                continue
            load.latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client(run) for run in runs))
    load.seconds = time.perf_counter() - started
    return load


async def ours(bench: Bench, sandbox_ids: list[str], websocket: bool) -> Load:
    async with AsyncExitStack() as stack:
        runs: list[Run] = []
        for sandbox in sandbox_ids:
            if websocket:
                auth = {"Authorization": f"Bearer {bench.stack.admin_key}"}
                ws = await connect(stream_url(bench.stack, sandbox), auth)
                stack.push_async_callback(ws.close)
                runs.append(partial(run_streamed, ws, PRINT1))
            else:
                rest = await RestClient.connect(bench.stack.api_url, bench.stack.admin_key)
                stack.push_async_callback(rest.close)
                runs.append(partial(rest.execute, sandbox))
        return await drive(runs, bench.scale.load_seconds)


async def theirs(bench: Bench, api: httpx.AsyncClient, clients: int) -> Load | None:
    if bench.peer is None:
        return None
    async with bench.peer.kernels(api, clients) as kernels:
        if len(kernels) < clients:
            return None
        runs: list[Run] = [partial(channels.execute, PRINT1) for _, channels in kernels]
        return await drive(runs, bench.scale.load_seconds)


def rows(clients: int, kind: str, load: Load, peer: Load | None) -> list[Figure]:
    peer_errors = peer.errors if peer is not None else []
    counts = [f"{len(load.errors)} errors"] if load.errors else []
    counts += [f"KG {len(peer_errors)} errors"] if peer_errors else []
    note = ", ".join(counts)
    at_target = clients == TARGET_CLIENTS
    who = f"{clients} client{'s' if clients > 1 else ''} {kind}"
    return [
        Figure(
            3,
            f"{who}: throughput",
            "exec/s",
            Stats.value(load.rate, len(load.latencies)),
            Stats.value(peer.rate, len(peer.latencies)) if peer else None,
            Target(2, at_most=False, relative=True) if at_target else None,
            note,
            tuple(dict.fromkeys(load.errors + [f"KG: {e}" for e in peer_errors]))[:3],
        ),
        Figure(
            3,
            f"{who}: latency",
            "ms",
            Stats.of(load.latencies),
            Stats.of(peer.latencies) if peer else None,
            Target(0.1, stat="p99", relative=True) if at_target else None,
        ),
    ]


async def measure(bench: Bench) -> list[Figure]:
    figures: list[Figure] = []
    most = max(bench.scale.clients)
    async with sandboxes(bench.api, most, within=bench.scale.create_within) as created:
        for clients in bench.scale.clients:
            if len(created) < clients:
                figures.append(Figure(3, f"{clients} clients", "exec/s", None, note="no sandboxes"))
                continue
            peer = None
            if clients in bench.scale.peer_clients and bench.peer_api is not None:
                peer = await theirs(bench, bench.peer_api, clients)
            for kind, websocket in (("REST", False), ("WebSocket", True)):
                load = await ours(bench, created[:clients], websocket)
                figures += rows(clients, kind, load, peer)
    return figures
