"""Local driver figures, printed (not asserted): cold create, round trip, idle memory, density.

Run as root: ``.venv/bin/python bench/isolation.py [--creates 30] [--fleet 200]``.
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
import statistics
import tempfile
import time
from pathlib import Path

from llmsafespace.runtime import AgentClient, RuntimeSpec
from llmsafespace.runtime.local import LocalConfig, LocalDriver, sweep
from llmsafespace.runtime.local.processes import live_pids


def _stats(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{statistics.median(ordered):7.1f} / {p95:7.1f}"


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _uid_of(config: LocalConfig, sandbox_id: str) -> int:
    meta = (config.runtime_dir / "sandboxes" / sandbox_id / "meta.json").read_text()
    return int(meta.split('"uid":')[1].split(",")[0])


def _available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


async def cold_creates(driver: LocalDriver, count: int, network: bool) -> None:
    ready, first, steps = [], [], []
    ports = (80, 443) if network else None
    for number in range(count):
        sandbox_id = f"cold{number}"
        start = time.perf_counter()
        handle = await driver.create(RuntimeSpec(sandbox_id=sandbox_id, network_ports=ports))
        ready.append((time.perf_counter() - start) * 1000)
        steps.append(dict(driver.timings))
        client = await AgentClient.connect(handle.endpoint, handle.token)
        await client.run_code("print(1)", timeout=10)
        first.append((time.perf_counter() - start) * 1000)
        await client.close()
        await driver.destroy(sandbox_id)
    label = "network" if network else "no network"
    print(f"cold create → agent ready ({label}, n={count}) ms median/p95: {_stats(ready)}")
    print(f"cold create → first result ({label}, n={count}) ms median/p95: {_stats(first)}")
    for step in steps[0]:
        print(f"    step {step:8s} {_stats([s.get(step, 0.0) for s in steps])}")


async def round_trip(driver: LocalDriver, count: int) -> None:
    handle = await driver.create(RuntimeSpec(sandbox_id="rtt"))
    client = await AgentClient.connect(handle.endpoint, handle.token)
    await client.run_code("print(1)", timeout=10)
    times = []
    for _ in range(count):
        start = time.perf_counter()
        await client.run_code("print(1)", timeout=10)
        times.append((time.perf_counter() - start) * 1000)
    await client.close()
    await driver.destroy("rtt")
    print(f"print(1) round trip (n={count}) ms median/p95: {_stats(times)}")


async def fleet(driver: LocalDriver, config: LocalConfig, count: int) -> None:
    before = _available_kib()
    start = time.perf_counter()
    created = 0
    try:
        for number in range(count):
            handle = await driver.create(RuntimeSpec(sandbox_id=f"idle{number}"))
            client = await AgentClient.connect(handle.endpoint, handle.token)
            await client.run_code("1", timeout=10)  # the interpreter is up, as after real use
            await client.close()
            created += 1
        elapsed = time.perf_counter() - start
        await asyncio.sleep(1.0)
        pss = [
            sum(_pss_kib(pid) for pid in live_pids(_uid_of(config, f"idle{n}")))
            for n in range(created)
        ]
        used = before - _available_kib()
        per = used / max(1, created)
        print(f"idle sandboxes created: {created} in {elapsed:.1f} s ({created / elapsed:.1f}/s)")
        spread = _stats([float(kib) for kib in pss])
        print(f"idle PSS per sandbox (all its processes) KiB median/p95: {spread}")
        print(f"MemAvailable drop per sandbox: {per / 1024:.1f} MiB (cgroups, tmpfs, page tables)")
        print(f"→ idle sandboxes that fit in MemAvailable now: {int(_available_kib() / per)}")
    finally:
        for number in range(created):
            await driver.destroy(f"idle{number}")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--creates", type=int, default=30)
    parser.add_argument("--round-trips", type=int, default=200)
    parser.add_argument("--fleet", type=int, default=200)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (the local driver switches to sandbox uids)")
    runtime_dir = Path(tempfile.mkdtemp(prefix="bench-", dir="/tmp"))
    os.chmod(runtime_dir, 0o755)
    config = LocalConfig(runtime_dir=runtime_dir)
    try:
        driver = LocalDriver(config)
        print("protections:", driver.protections())
        await cold_creates(driver, min(args.creates, 500), network=False)
        if driver.protections()["network"] != "none":
            await cold_creates(driver, min(args.creates, 500), network=True)
        await round_trip(driver, min(args.round_trips, 10_000))
        await fleet(driver, config, min(args.fleet, 2000))
    finally:
        sweep(runtime_dir, config)
        shutil.rmtree(runtime_dir, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
