"""Local driver figures, printed (not asserted): cold create, round trip, idle memory, density.

Run as root: ``.venv/bin/python bench/isolation.py [--creates 30] [--fleet 200] [--no-network]``.
Through the driver directly (no services): cold create → agent ready and → first result
(median/p95) with where the time goes per step, the ``print(1)`` round trip in a running
agent, idle PSS per sandbox (``/proc/<pid>/smaps_rollup`` of the sandbox's processes) and
how many idle sandboxes fit (``--fleet`` created one after another, then destroyed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import time

from harness import Stats, runtime_dir
from memory import available_kib, sandboxes_pss_kib
from round_trip import timed

from llmsafespace.runtime import AgentClient, RuntimeSpec
from llmsafespace.runtime.local import LocalConfig, LocalDriver, sweep


def _stats(values: list[float]) -> str:
    stats = Stats.of(values)
    if stats is None or stats.p95 is None:
        return "no samples"
    return f"{stats.median:7.1f} / {stats.p95:7.1f}"


async def first_results(
    driver: LocalDriver, count: int, network: bool = False
) -> tuple[list[float], list[float], list[dict[str, float]]]:
    """Cold creates one after another: ms to agent ready, ms to the first `print(1)`'s
    result, and the driver's steps of each."""
    ready, first, steps = [], [], []
    ports = (80, 443) if network else None
    for number in range(count):
        sandbox_id = f"cold{number}"
        start = time.perf_counter()
        handle = await driver.create(RuntimeSpec(runtime_id=sandbox_id, network_ports=ports))
        ready.append((time.perf_counter() - start) * 1000)
        steps.append(dict(driver.timings))
        client = await AgentClient.connect(handle.endpoint, handle.token)
        await client.run_code("print(1)", timeout=10)
        first.append((time.perf_counter() - start) * 1000)
        await client.close()
        await driver.destroy(sandbox_id)
    return ready, first, steps


async def cold_creates(driver: LocalDriver, count: int, network: bool) -> None:
    ready, first, steps = await first_results(driver, count, network)
    label = "network" if network else "no network"
    print(f"cold create → agent ready ({label}, n={count}) ms median/p95: {_stats(ready)}")
    print(f"cold create → first result ({label}, n={count}) ms median/p95: {_stats(first)}")
    for step in steps[0]:
        print(f"    step {step:8s} {_stats([s.get(step, 0.0) for s in steps])}")


async def round_trip(driver: LocalDriver, count: int) -> None:
    handle = await driver.create(RuntimeSpec(runtime_id="rtt"))
    client = await AgentClient.connect(handle.endpoint, handle.token)
    times = await timed(lambda: client.run_code("print(1)", timeout=10), count)
    await client.close()
    await driver.destroy("rtt")
    print(f"print(1) round trip (n={count}) ms median/p95: {_stats(times)}")


async def fleet(driver: LocalDriver, config: LocalConfig, count: int) -> None:
    before = available_kib()
    start = time.perf_counter()
    created = 0
    try:
        for number in range(count):
            handle = await driver.create(RuntimeSpec(runtime_id=f"idle{number}"))
            client = await AgentClient.connect(handle.endpoint, handle.token)
            await client.run_code("1", timeout=10)  # the interpreter is up, as after real use
            await client.close()
            created += 1
        elapsed = time.perf_counter() - start
        await asyncio.sleep(1.0)
        pss = sandboxes_pss_kib(config.runtime_dir, [f"idle{n}" for n in range(created)])
        used = before - available_kib()
        per = used / max(1, created)
        print(f"idle sandboxes created: {created} in {elapsed:.1f} s ({created / elapsed:.1f}/s)")
        spread = _stats([float(kib) for kib in pss])
        print(f"idle PSS per sandbox (all its processes) KiB median/p95: {spread}")
        print(f"MemAvailable drop per sandbox: {per / 1024:.1f} MiB (cgroups, tmpfs, page tables)")
        print(f"→ idle sandboxes that fit in MemAvailable now: {int(available_kib() / per)}")
    finally:
        for number in range(created):
            await driver.destroy(f"idle{number}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=30)
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--fleet", type=int, default=200)
    parser.add_argument(
        "--no-network", action="store_true", help="skip the cold creates with network"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (the local driver switches to sandbox uids)")
    directory = runtime_dir("bench-")
    config = LocalConfig(runtime_dir=directory, ready_timeout=60)  # a busy host is slow
    try:
        driver = LocalDriver(config)
        print("protections:", driver.protections())
        await cold_creates(driver, min(args.creates, 500), network=False)
        if driver.protections()["network"] != "none" and not args.no_network:
            await cold_creates(driver, min(args.creates, 500), network=True)
        await round_trip(driver, min(args.round_trips, 10_000))
        await fleet(driver, config, min(args.fleet, 2000))
    finally:
        sweep(directory, config)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
