"""File transfer through the public API: upload and download throughput of one file and
the peak RSS (VmHWM) of the gateway and exec-svc, which must not grow with the file size.

    python bench/file_transfer.py [--mib 100] [--runs 3]

Starts its own embedded stack (127.0.0.1 only) in a temporary directory and stops it.
"""

import argparse
import asyncio
import hashlib
import os
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from harness import running_stack

from llmsafespace.devstack import Stack

BLOCK = 1024 * 1024


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peaks(stack: Stack) -> dict[str, float]:
    found = {}
    for name in ("api-gateway", "exec-svc"):
        process = stack.services[name].process
        assert process is not None
        found[name] = peak_rss_mib(process.pid)
    return found


async def transfer(api: httpx.AsyncClient, sandbox_id: str, mib: int) -> tuple[float, float]:
    """(upload MiB/s, download MiB/s) for one file of `mib` MiB."""
    block = os.urandom(BLOCK)
    sent = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(mib):
            sent.update(block)
            yield block

    path = f"/sandboxes/{sandbox_id}/files/workspace/bench.bin"
    started = time.perf_counter()
    written = await api.put(path, content=body(), headers={"content-length": str(mib * BLOCK)})
    up = time.perf_counter() - started
    assert written.status_code == 201, written.text
    received = hashlib.sha256()
    started = time.perf_counter()
    async with api.stream("GET", path) as response:
        assert response.status_code == 200
        async for piece in response.aiter_bytes(BLOCK):
            received.update(piece)
    down = time.perf_counter() - started
    assert received.hexdigest() == sent.hexdigest()
    await api.delete(path)
    return mib / up, mib / down


async def main(mib: int, runs: int) -> None:
    async with running_stack() as stack:
        headers = {"Authorization": f"Bearer {stack.admin_key}"}
        async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=300) as api:
            storage = f"{max(256, 2 * mib)}Mi"
            body = {"resources": {"ephemeralStorage": storage}}
            created = await api.post("/sandboxes", json=body)
            assert created.status_code == 201, created.text
            sandbox_id = created.json()["id"]
            await transfer(api, sandbox_id, 8)  # warm up
            before = peaks(stack)
            small = [await transfer(api, sandbox_id, max(1, mib // 10)) for _ in range(runs)]
            after_small = peaks(stack)
            large = [await transfer(api, sandbox_id, mib) for _ in range(runs)]
            after_large = peaks(stack)
            await api.delete(f"/sandboxes/{sandbox_id}")
        for label, samples, size in (("small", small, max(1, mib // 10)), ("large", large, mib)):
            print(
                f"{label} {size:>4} MiB  upload {statistics.median(s[0] for s in samples):7.1f}"
                f" MiB/s  download {statistics.median(s[1] for s in samples):7.1f} MiB/s"
            )
        for name in before:
            print(
                f"peak RSS {name:<12} warm {before[name]:6.1f} MiB  after {mib // 10} MiB files"
                f" {after_small[name]:6.1f} MiB  after {mib} MiB files {after_large[name]:6.1f} MiB"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.mib, arguments.runs))
