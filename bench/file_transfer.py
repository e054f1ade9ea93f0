"""Figure 5, files through the public API: upload and download of one 100 MiB file
(streamed both ways, checksummed), and the peak RSS (VmHWM) of the gateway and exec-svc,
which must not grow with the file size. Kernel Gateway has no file API."""

import hashlib
import os
import time
from collections.abc import AsyncIterator

import httpx
from context import Bench
from harness import Stats
from memory import peak_rss_kib
from report import Figure

from llmsafespace.devstack import Stack

BLOCK = 1024 * 1024
WATCHED = ("api-gateway", "exec-svc")


def peaks_mib(stack: Stack) -> dict[str, float]:
    found = {}
    for name in WATCHED:
        process = stack.services[name].process
        found[name] = peak_rss_kib(process.pid) / 1024 if process is not None else 0.0
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
    if written.status_code != 201:
        raise RuntimeError(f"upload: {written.status_code} {written.text[:200]}")
    received = hashlib.sha256()
    started = time.perf_counter()
    async with api.stream("GET", path) as response:
        if response.status_code != 200:
            raise RuntimeError(f"download: {response.status_code}")
        async for piece in response.aiter_bytes(BLOCK):
            received.update(piece)
    down = time.perf_counter() - started
    if received.hexdigest() != sent.hexdigest():
        raise RuntimeError("downloaded bytes differ from the uploaded ones")
    await api.delete(path)
    return mib / up, mib / down


async def measure(bench: Bench) -> list[Figure]:
    mib, runs = bench.scale.file_mib, bench.scale.file_runs
    body = {"resources": {"memory": "256Mi", "ephemeralStorage": f"{max(256, 2 * mib)}Mi"}}
    created = await bench.api.post("/sandboxes", json=body)
    created.raise_for_status()
    sandbox = created.json()["id"]
    try:
        await transfer(bench.api, sandbox, 8)  # warm up
        before = peaks_mib(bench.stack)
        samples = [await transfer(bench.api, sandbox, mib) for _ in range(runs)]
        after = peaks_mib(bench.stack)
    finally:
        await bench.api.delete(f"/sandboxes/{sandbox}")
    figures = [
        Figure(5, f"{mib} MiB upload", "MiB/s", Stats.of([up for up, _ in samples])),
        Figure(5, f"{mib} MiB download", "MiB/s", Stats.of([down for _, down in samples])),
    ]
    for name in WATCHED:
        growth = f"from {before[name]:.0f} MiB after 8 MiB files"
        figures.append(Figure(5, f"peak RSS {name}", "MiB", Stats.value(after[name]), note=growth))
    return figures
