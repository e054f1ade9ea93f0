"""Figures 1 and 7: the `print(1)` round trip on a warm sandbox (REST and WebSocket, and
Kernel Gateway's kernel channels), and the same execution straight to the agent of a
sandbox the local driver made, without our services: the ratio is what our layers cost.

The clients of figure 1 take turns of TURN calls each, in a rotating order, so that
whatever the machine does during the run (a neighbour, a background flush, the clock's
speed) weighs on every one of them alike; measured one after another, a quiet minute for
one and a busy one for the next had shown as a difference between them. Each turn starts
with WARM_UP calls that are not counted, as each client's phase did: the side that waited
through the others' turns wakes up, and the work the previous side deferred past its
replies (our bookkeeping and audit trail, the kernel's idle status) is done meanwhile.
"""

import os
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping

from context import Bench
from harness import PRINT1, Stats, execute, runtime_dir, stream_url
from report import Figure, Target
from rest_client import RestClient
from stream_client import connect, run_streamed

from llmsafespace.runtime import AgentClient, LocalConfig, LocalDriver, RuntimeSpec
from llmsafespace.runtime.local import sweep

WARM_UP = 5
TURN = 20  # counted calls of one client in a row
TARGET = Target(0.5, relative=True)  # half the Kernel Gateway's


async def timed(run: Callable[[], Awaitable[object]], count: int) -> list[float]:
    """ms per call of `run`, after WARM_UP calls that are not counted."""
    for _ in range(WARM_UP):
        await run()
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def taking_turns(
    runs: Mapping[str, Callable[[], Awaitable[object]]], count: int
) -> dict[str, list[float]]:
    """ms per call of each of `runs`, `count` each, in turns of TURN counted calls after
    WARM_UP uncounted ones; the order of the runs rotates by one each round."""
    names = list(runs)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for number in range(-(-count // TURN)):
        turn = number % len(names)
        for name in names[turn:] + names[:turn]:
            for _ in range(WARM_UP):
                await runs[name]()
            for _ in range(min(TURN, count - number * TURN)):
                started = time.perf_counter()
                await runs[name]()
                samples[name].append((time.perf_counter() - started) * 1000)
    return samples


async def direct_to_agent(count: int) -> list[float] | None:
    """print(1) through `AgentClient` on a sandbox of our own `LocalDriver` (root only)."""
    if os.geteuid() != 0:
        return None
    directory = runtime_dir("llmsafespace-bench-direct-")
    config = LocalConfig(runtime_dir=directory, ready_timeout=60)  # a busy host is slow
    try:
        driver = LocalDriver(config)
        handle = await driver.create(RuntimeSpec(runtime_id="sb-benchdirect0"))
        client = await AgentClient.connect(handle.endpoint, handle.token)
        try:
            return await timed(lambda: client.run_code(PRINT1, timeout=10), count)
        finally:
            await client.close()
            await driver.destroy(handle.runtime_id)
    finally:
        sweep(directory, config)
        shutil.rmtree(directory, ignore_errors=True)


async def measure(bench: Bench) -> list[Figure]:
    count = bench.scale.round_trips
    created = await bench.api.post("/sandboxes", json={"resources": {"memory": "256Mi"}})
    created.raise_for_status()
    sandbox = created.json()["id"]
    auth = {"Authorization": f"Bearer {bench.stack.admin_key}"}
    lean = await RestClient.connect(bench.stack.api_url, bench.stack.admin_key)
    ws = await connect(stream_url(bench.stack, sandbox), auth)
    kernel = None
    runs: dict[str, Callable[[], Awaitable[object]]] = {
        "rest": lambda: lean.execute(sandbox),
        "httpx": lambda: execute(bench.api, sandbox, PRINT1),
        "ws": lambda: run_streamed(ws, PRINT1),
    }
    try:
        if bench.peer is not None and bench.peer_api is not None:
            kernel = await bench.peer.new_kernel(bench.peer_api)
            channels = kernel[1]
            runs["peer"] = lambda: channels.execute(PRINT1)
        samples = await taking_turns(runs, count)
    finally:
        await lean.close()
        await ws.close()
        await bench.api.delete(f"/sandboxes/{sandbox}")
        if kernel is not None and bench.peer is not None and bench.peer_api is not None:
            await bench.peer.delete_kernel(bench.peer_api, *kernel)
    rest, through_httpx, websocket = samples["rest"], samples["httpx"], samples["ws"]
    peer = Stats.of(samples.get("peer", []))
    direct = await direct_to_agent(count)
    ours_rest, ours_ws, ours_direct = Stats.of(rest), Stats.of(websocket), Stats.of(direct or [])
    figures = [
        Figure(1, "print(1) round trip, REST", "ms", ours_rest, peer, TARGET, "KG: WS channels"),
        Figure(1, "  the same through httpx (the SDK's client)", "ms", Stats.of(through_httpx)),
        Figure(1, "print(1) round trip, WebSocket", "ms", ours_ws, peer, TARGET),
        Figure(7, "print(1) direct to the agent (no services)", "ms", ours_direct),
    ]
    if ours_rest and ours_ws and ours_direct:
        for label, through in (("REST", ours_rest), ("WebSocket", ours_ws)):
            ratio = Stats.value(through.median / ours_direct.median, ours_direct.n)
            added = f"+{through.median - ours_direct.median:.2f} ms"
            figures.append(Figure(7, f"gateway overhead, {label} / direct", "x", ratio, note=added))
    return figures
