"""Figure 8: server-side CPU per execution, summed over the processes an execution crosses
(gateway, exec-svc, audit-svc, sandbox-svc, warmpool-svc, NATS, PostgreSQL, Redis), each
read from /proc before and after a fixed number of `print(1)` executions, REST and
WebSocket. The sandbox's own agent is not counted (it runs the code); the client is
printed beside for scale.
"""

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from context import Bench
from harness import PRINT1, Stats, stream_url
from report import Figure, Target
from rest_client import RestClient
from stream_client import connect, run_streamed

TARGET = Target(4.0)
SETTLE = 2.0  # seconds for work written behind (audit, summary rows) to land
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        return Path("/proc", str(pid), "stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            tree.setdefault(int(fields[1]), []).append(int(entry))
    return tree


def tree_cpu_ms(root: int, tree: dict[int, list[int]]) -> float:
    """CPU of `root` and every live descendant, plus what its reaped children used."""
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        fields = _stat(pid)
        if fields is None:
            continue
        used = int(fields[11]) + int(fields[12])  # utime, stime
        if pid == root:
            used += int(fields[13]) + int(fields[14])  # cutime, cstime
        total += used * TICK_MS
        pending.extend(tree.get(pid, []))
    return total


def processes(bench: Bench) -> dict[str, int]:
    """Name → root pid of each server and service process the stack runs."""
    found = {
        name: server.process.pid
        for name, server in zip(
            ("nats", "postgres", "redis"), bench.stack.servers.all(), strict=True
        )
        if server.process is not None
    }
    for name, service in bench.stack.services.items():
        if service.process is not None:
            found[name] = service.process.pid
    return found


def snapshot(roots: dict[str, int]) -> dict[str, float]:
    tree = _children()
    return {name: tree_cpu_ms(pid, tree) for name, pid in roots.items()}


async def per_execution(
    bench: Bench, run: Callable[[], Awaitable[object]], count: int
) -> tuple[dict[str, float], float]:
    """CPU ms per execution for each process, and the client's."""
    roots = processes(bench)
    for _ in range(5):
        await run()
    await asyncio.sleep(SETTLE)
    before, client_before = snapshot(roots), time.process_time()
    for _ in range(count):
        await run()
    client = (time.process_time() - client_before) * 1000 / count
    await asyncio.sleep(SETTLE)
    after = snapshot(roots)
    return {name: (after[name] - before[name]) / count for name in roots}, client


def _breakdown(used: dict[str, float], client: float) -> str:
    parts = [f"{name} {ms:.2f}" for name, ms in sorted(used.items(), key=lambda kv: -kv[1])]
    return ", ".join(parts) + f"; client {client:.2f}"


# /proc counts CPU in clock ticks (10 ms): over 200 executions a tick is 0.05 ms per
# execution per process, and eight processes' rounding swung the sum by ±0.4 ms.
COUNT_FACTOR = 10


async def measure(bench: Bench) -> list[Figure]:
    count = bench.scale.round_trips * COUNT_FACTOR
    created = await bench.api.post("/sandboxes", json={"resources": {"memory": "256Mi"}})
    created.raise_for_status()
    sandbox = created.json()["id"]
    try:
        lean = await RestClient.connect(bench.stack.api_url, bench.stack.admin_key)
        try:
            rest, rest_client = await per_execution(bench, lambda: lean.execute(sandbox), count)
        finally:
            await lean.close()
        auth = {"Authorization": f"Bearer {bench.stack.admin_key}"}
        ws = await connect(stream_url(bench.stack, sandbox), auth)
        try:
            streamed, ws_client = await per_execution(
                bench, lambda: run_streamed(ws, PRINT1), count
            )
        finally:
            await ws.close()
    finally:
        await bench.api.delete(f"/sandboxes/{sandbox}")
    return [
        Figure(
            8,
            "server CPU per execution, REST",
            "ms",
            Stats.value(sum(rest.values()), count),
            target=TARGET,
            examples=(_breakdown(rest, rest_client),),
        ),
        Figure(
            8,
            "server CPU per execution, WebSocket",
            "ms",
            Stats.value(sum(streamed.values()), count),
            target=TARGET,
            examples=(_breakdown(streamed, ws_client),),
        ),
    ]
