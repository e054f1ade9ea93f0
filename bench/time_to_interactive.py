"""Figure 2, time to interactive: create a sandbox and get the result of its first
`print(1)`, through the public API (the lean REST client of figure 1, on one kept-alive
connection), from a warm pool and cold; for Kernel Gateway, a new kernel (`POST
/api/kernels`, open its channels) to the first result. It has no pool to claim from, so
both of our rows compare with that. Below them, the cold create at the local driver
itself (a driver of the bench's own, no services): what a sandbox's start costs."""

import asyncio
import json
import shutil
import time

import httpx
from context import Bench
from harness import PRINT1, Stats, runtime_dir
from isolation import first_results
from report import Figure, Target
from rest_client import RestClient

from llmsafespace.runtime.local import LocalConfig, LocalDriver, sweep

POOL = "bench-tti"
POOL_SIZE = 4
RESOURCES = {"memory": "256Mi"}


async def interactive(
    api: httpx.AsyncClient, lean: RestClient, warm: bool
) -> tuple[float, float, bool]:
    """(ms from create to the first result, of which the create's reply, whether the
    sandbox came from the pool)."""
    started = time.perf_counter()
    status, body = await lean.post("/sandboxes", {"resources": RESOURCES, "useWarmPool": warm})
    replied = (time.perf_counter() - started) * 1000
    if status != 201:
        raise RuntimeError(f"create: {status} {body[:200]!r}")
    sandbox = json.loads(body)
    result = await lean.execute(sandbox["id"])
    elapsed = (time.perf_counter() - started) * 1000
    if result["stdout"] != "1\n":
        raise RuntimeError(f"unexpected output {result['stdout']!r}")
    await api.delete(f"/sandboxes/{sandbox['id']}")
    return elapsed, replied, bool(sandbox["fromWarmPool"])


async def wait_pool(api: httpx.AsyncClient, size: int) -> None:
    async with asyncio.timeout(120):
        while True:
            status = (await api.get(f"/warmpools/{POOL}/status")).json()
            if status["availablePods"] >= size:
                return
            await asyncio.sleep(0.05)


async def peer_interactive(bench: Bench) -> list[float]:
    if bench.peer is None or bench.peer_api is None:
        return []
    samples = []
    for number in range(bench.scale.tti_peer + 1):
        started = time.perf_counter()
        kernel_id, channels = await bench.peer.new_kernel(bench.peer_api)
        await channels.execute(PRINT1)
        elapsed = (time.perf_counter() - started) * 1000
        await bench.peer.delete_kernel(bench.peer_api, kernel_id, channels)
        if number:  # the first one warms up the gateway
            samples.append(elapsed)
    return samples


async def at_the_driver(count: int) -> list[float]:
    """ms from a cold create at the local driver to its first result (one warm-up
    create first, left out)."""
    config = LocalConfig(runtime_dir=runtime_dir("bench-driver-"))
    driver = LocalDriver(config)
    try:
        return (await first_results(driver, count + 1))[1][1:]
    finally:
        await driver.close()
        sweep(config.runtime_dir, config)
        shutil.rmtree(config.runtime_dir, ignore_errors=True)


async def measure(bench: Bench) -> list[Figure]:
    api, scale = bench.api, bench.scale
    pool = {"name": POOL, "minSize": POOL_SIZE, "maxSize": POOL_SIZE, "resources": RESOURCES}
    (await api.post("/warmpools", json=pool)).raise_for_status()
    lean = await RestClient.connect(bench.stack.api_url, bench.stack.admin_key)
    try:
        await interactive(api, lean, warm=False)  # warm up the services themselves
        cold = [(await interactive(api, lean, warm=False))[0] for _ in range(scale.tti_cold)]
        warm: list[float] = []
        claims: list[float] = []
        misses = 0
        for _ in range(scale.tti_warm):
            await wait_pool(api, POOL_SIZE)  # measure a claim, not a pool that ran dry
            elapsed, replied, hit = await interactive(api, lean, warm=True)
            if hit:
                warm.append(elapsed)
                claims.append(replied)
            else:
                misses += 1
    finally:
        await lean.close()
        await api.delete(f"/warmpools/{POOL}")
    peer = Stats.of(await peer_interactive(bench))
    driver = Stats.of(await at_the_driver(scale.tti_cold))
    note = f"{misses} pool misses excluded" if misses else ""
    return [
        Figure(2, "time to interactive, warm pool", "ms", Stats.of(warm), peer, Target(12), note),
        Figure(2, "  of which the create's reply (claim)", "ms", Stats.of(claims)),
        Figure(2, "time to interactive, cold", "ms", Stats.of(cold), peer),
        Figure(2, "cold create → first result, at the driver", "ms", driver, target=Target(60)),
    ]
