"""Figure 9, the data runtime against Kernel Gateway. The first chart: claim a
`python:3.11-data` sandbox from a warm pool whose preload script imported pandas and
matplotlib, run a plotting cell, receive its PNG (the execute result's `image/png`);
Kernel Gateway: a new kernel (`POST /api/kernels`, open its channels), the same cell, its
`display_data` PNG. It has no pool to claim from (nor anything like a preload script for
the kernels a client asks for), so its kernels import pandas and matplotlib in the cell.
Then idle PSS with pandas and matplotlib imported: claimed data sandboxes (the pool
deleted first, so no ready sandbox shares their pages) against kernels that ran the
same imports."""

import asyncio
import time
from typing import Any

import asyncpg
import httpx
from context import Bench
from harness import Stats, delete_sandboxes, execute
from memory import sandboxes_pss_kib
from report import Figure, Target

from llmsafespace.devstack import Stack

POOL = "bench-data"
RUNTIME = "python:3.11-data"
RESOURCES = {"memory": "512Mi"}
IMPORTS = "import pandas as pd, matplotlib.pyplot as plt"
CHART = f"{IMPORTS}\npd.DataFrame({{'a': [1, 2, 3]}}).plot()\nplt.show()"
POOL_READY_WITHIN = 180.0  # seconds: each pool sandbox imports pandas and matplotlib
TIMEOUT = 600.0  # seconds for the module: a data pool refills slowly on a busy host
SETTLE = 1.0  # seconds for the interpreters to go quiet before PSS is read


def has_png(result: dict[str, Any]) -> bool:
    return any("image/png" in bundle["data"] for bundle in result["results"])


async def claim(api: httpx.AsyncClient) -> dict[str, Any]:
    created = await api.post("/sandboxes", json={"runtime": RUNTIME, "resources": RESOURCES})
    if created.status_code != 201:
        raise RuntimeError(f"create: {created.status_code} {created.text[:200]}")
    sandbox: dict[str, Any] = created.json()
    return sandbox


async def wait_pool(api: httpx.AsyncClient, size: int) -> None:
    async with asyncio.timeout(POOL_READY_WITHIN):
        while True:
            status = (await api.get(f"/warmpools/{POOL}/status")).json()
            if status["availablePods"] >= size:
                return
            await asyncio.sleep(0.05)


async def runtime_ids(stack: Stack, sandbox_ids: list[str]) -> list[str]:
    """The local driver's ids of claimed sandboxes: each runs under the id its warm
    sandbox was created with, not the sandbox's."""
    connection = await asyncpg.connect(stack.env["DATABASE_URL"])
    try:
        rows = await connection.fetch(
            "SELECT id, runtime_id FROM sandboxes WHERE id = ANY($1)", sandbox_ids
        )
    finally:
        await connection.close()
    by_id = {row["id"]: row["runtime_id"] for row in rows}
    return [by_id.get(sandbox_id, sandbox_id) for sandbox_id in sandbox_ids]


async def first_chart(api: httpx.AsyncClient) -> tuple[float, bool]:
    """(ms from the claim to the PNG, whether the sandbox came from the pool)."""
    started = time.perf_counter()
    sandbox = await claim(api)
    result = await execute(api, sandbox["id"], CHART)
    elapsed = (time.perf_counter() - started) * 1000
    await api.delete(f"/sandboxes/{sandbox['id']}")
    if not has_png(result):
        raise RuntimeError(f"no image/png in {result['results']!r:.200}")
    return elapsed, bool(sandbox["fromWarmPool"])


async def ours(bench: Bench) -> tuple[list[float], int, list[float]]:
    """(first-chart ms, pool misses, idle PSS MiB per data sandbox)."""
    api, scale = bench.api, bench.scale
    size = scale.data_idle
    pool = {
        "name": POOL,
        "runtime": RUNTIME,
        "minSize": size,
        "maxSize": size,
        "resources": RESOURCES,
        "preloadScripts": [IMPORTS],
    }
    (await api.post("/warmpools", json=pool)).raise_for_status()
    idle: list[str] = []
    try:
        charts: list[float] = []
        misses = 0
        for number in range(scale.first_charts + 1):
            await wait_pool(api, size)  # measure a claim, not a pool that ran dry
            elapsed, hit = await first_chart(api)
            if not number:
                continue  # the first one warms up the services
            if hit:
                charts.append(elapsed)
            else:
                misses += 1
        await wait_pool(api, size)
        idle = [(await claim(api))["id"] for _ in range(size)]
    finally:
        await api.delete(f"/warmpools/{POOL}")
    try:
        await asyncio.gather(*(execute(api, sandbox, IMPORTS) for sandbox in idle))
        await asyncio.sleep(SETTLE)
        claimed = await runtime_ids(bench.stack, idle)
        pss = [kib / 1024 for kib in sandboxes_pss_kib(bench.stack.runtime_dir, claimed)]
        if not all(pss):
            raise RuntimeError(f"no processes found for some of {claimed}")
    finally:
        await delete_sandboxes(api, idle)
    return charts, misses, pss


async def theirs(bench: Bench) -> tuple[list[float], list[float]]:
    """(first-chart ms, idle PSS MiB per kernel)."""
    peer, api = bench.peer, bench.peer_api
    if peer is None or api is None:
        return [], []
    charts = []
    for number in range(bench.scale.first_charts + 1):
        started = time.perf_counter()
        kernel_id, channels = await peer.new_kernel(api)
        outcome = await channels.execute(CHART)
        elapsed = (time.perf_counter() - started) * 1000
        await peer.delete_kernel(api, kernel_id, channels)
        if not outcome.images:
            raise RuntimeError("the kernel displayed no image/png")
        if number:  # the first one warms up the gateway (and matplotlib's font cache)
            charts.append(elapsed)
    async with peer.kernels(api, bench.scale.data_idle) as kernels:
        await asyncio.gather(*(channels.execute(IMPORTS) for _, channels in kernels))
        await asyncio.sleep(SETTLE)
        pss = [peer.kernel_pss_kib(kernel_id) / 1024 for kernel_id, _ in kernels]
    return charts, pss


async def measure(bench: Bench) -> list[Figure]:
    charts, misses, pss = await ours(bench)
    peer_charts, peer_pss = await theirs(bench)
    note = "KG: new kernel, same cell" + (f"; {misses} pool misses excluded" if misses else "")
    return [
        Figure(
            9,
            "first chart: warm data sandbox, df.plot() → PNG",
            "ms",
            Stats.of(charts),
            Stats.of(peer_charts),
            Target(0.1, relative=True),
            note,
        ),
        Figure(
            9,
            "idle PSS, pandas + matplotlib imported",
            "MiB",
            Stats.of(pss),
            Stats.of(peer_pss),
            Target(0.5, relative=True),
        ),
    ]
