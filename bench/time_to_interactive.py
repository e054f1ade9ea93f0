"""Time to interactive: create a sandbox and get the result of its first `print(1)`,
through the public API, from a warm pool and cold. Prints median/p95/p99 in ms.

    python bench/time_to_interactive.py [--runs 50]

Starts its own embedded stack (127.0.0.1 only) in a temporary directory and stops it.
"""

import argparse
import asyncio
import statistics
import time

import httpx
from harness import percentile, running_stack

POOL = "bench-tti"
RESOURCES = {"memory": "512Mi"}


async def interactive(api: httpx.AsyncClient, warm: bool) -> tuple[float, bool]:
    started = time.perf_counter()
    created = await api.post("/sandboxes", json={"resources": RESOURCES, "useWarmPool": warm})
    assert created.status_code == 201, created.text
    sandbox = created.json()
    run = await api.post(
        f"/sandboxes/{sandbox['id']}/execute", json={"type": "code", "content": "print(1)"}
    )
    elapsed = (time.perf_counter() - started) * 1000
    assert run.json()["stdout"] == "1\n", run.text
    await api.delete(f"/sandboxes/{sandbox['id']}")
    return elapsed, sandbox["fromWarmPool"]


async def wait_pool(api: httpx.AsyncClient, size: int) -> None:
    async with asyncio.timeout(300):
        while True:
            status = (await api.get(f"/warmpools/{POOL}/status")).json()
            if status["availablePods"] >= size:
                return
            await asyncio.sleep(0.1)


def report(label: str, samples: list[float]) -> None:
    print(
        f"{label:<5} n={len(samples):<4} median={statistics.median(samples):7.1f} ms"
        f"  p95={percentile(samples, 0.95):7.1f} ms  p99={percentile(samples, 0.99):7.1f} ms"
    )


async def main(runs: int) -> None:
    async with running_stack() as stack:
        headers = {"Authorization": f"Bearer {stack.admin_key}"}
        async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
            pool = {"name": POOL, "minSize": 4, "maxSize": 4, "resources": RESOURCES}
            (await api.post("/warmpools", json=pool)).raise_for_status()
            await interactive(api, warm=False)  # warm up the services themselves
            cold = [(await interactive(api, warm=False))[0] for _ in range(runs)]
            warm: list[float] = []
            misses = 0
            for _ in range(runs):
                await wait_pool(api, 4)  # measure a claim, not a pool that ran dry
                elapsed, hit = await interactive(api, warm=True)
                if hit:
                    warm.append(elapsed)
                else:
                    misses += 1
            report("warm", warm)
            report("cold", cold)
            if misses:
                print(f"warm misses (excluded): {misses}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="samples per mode (1-500)")
    arguments = parser.parse_args()
    asyncio.run(main(max(1, min(500, arguments.runs))))
