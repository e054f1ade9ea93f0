"""What the benchmarks share: their own embedded stack on 127.0.0.1, the programs they
run, summary statistics, and creating and deleting sandboxes through the public API."""

import asyncio
import json
import os
import statistics
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from llmsafespace.devstack import Stack, state_dirs

UNLIMITED = json.dumps({"create_sandbox": 10**6, "execute_code": 10**6, "default": 10**6})
RESOURCES = {"memory": "256Mi"}
CREATE_CONCURRENCY = 8  # parallel creates: about what a busy 2-core host absorbs
PRINT1 = "print(1)"


def bulk_program(mib: int) -> str:
    """Python that writes exactly `mib` MiB of text to stdout."""
    return (
        "import sys\n"
        "block = ('x' * 1023 + '\\n') * 64\n"
        f"for _ in range({mib * 16}):\n"
        "    sys.stdout.write(block)\n"
        "sys.stdout.flush()\n"
    )


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Stats:
    """One figure: the median of n samples with its tail, or a single value (no tail)."""

    n: int
    median: float
    p95: float | None = None
    p99: float | None = None

    @classmethod
    def of(cls, samples: Sequence[float]) -> "Stats | None":
        if not samples:
            return None
        return cls(
            n=len(samples),
            median=statistics.median(samples),
            p95=percentile(samples, 0.95),
            p99=percentile(samples, 0.99),
        )

    @classmethod
    def value(cls, value: float, n: int = 1) -> "Stats":
        return cls(n=n, median=value)


def state_dir(prefix: str) -> Path:
    """A fresh state directory under /tmp (the unprivileged PostgreSQL and sandbox users
    reach the shared directory beside it: see `state_dirs`)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def runtime_dir(prefix: str) -> Path:
    """A fresh runtime directory under /tmp for a `LocalDriver` of the bench's own:
    traversable by others, as sandbox uids must reach what the driver keeps in it."""
    directory = state_dir(prefix)
    directory.chmod(0o711)
    return directory


@asynccontextmanager
async def running_stack(environ: Mapping[str, str] | None = None) -> AsyncIterator[Stack]:
    """A fresh stack in a temporary state dir, rate limits lifted; removed afterwards."""
    directory = state_dir("llmsafespace-bench-")
    env = {**os.environ, "GATEWAY_RATE_LIMITS": UNLIMITED, **(environ or {})}
    stack = Stack(directory, api_port=0, environ=env)
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop()
        state_dirs.remove(directory)


def api_client(stack: Stack, timeout: float = 120) -> httpx.AsyncClient:
    """An admin client (admins are exempt from quotas) keeping its connections alive."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    return httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=timeout)


def stream_url(stack: Stack, sandbox_id: str) -> str:
    return stack.api_url.replace("http://", "ws://", 1) + f"/sandboxes/{sandbox_id}/stream"


async def execute(api: httpx.AsyncClient, sandbox_id: str, code: str) -> dict[str, Any]:
    """One synchronous execution through REST; raises unless it completed."""
    response = await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": code}
    )
    if response.status_code != 200:
        raise RuntimeError(f"execute: {response.status_code} {response.text[:200]}")
    result: dict[str, Any] = response.json()
    if result["status"] != "completed":
        raise RuntimeError(f"execute: {result['status']} {result.get('stderr', '')[:200]}")
    return result


async def create_sandboxes(
    api: httpx.AsyncClient,
    count: int,
    *,
    body: Mapping[str, object] | None = None,
    within: float = 300.0,
    failures: list[str] | None = None,
) -> list[str]:
    """Up to `count` sandboxes, CREATE_CONCURRENCY at a time, stopping after `within`
    seconds; the ids of those created (why the others failed goes to `failures`)."""
    limit = asyncio.Semaphore(CREATE_CONCURRENCY)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    request = body if body is not None else {"resources": RESOURCES}

    async def create() -> str | None:
        async with limit:
            if loop.time() > deadline:
                return None
            try:
                response = await api.post("/sandboxes", json=request)
            except httpx.HTTPError as exc:
                failure = repr(exc)
            else:
                if response.status_code == 201:
                    return str(response.json()["id"])
                failure = f"{response.status_code} {response.text[:200]}"
        if failures is not None:
            failures.append(failure)
        return None

    created = await asyncio.gather(*(create() for _ in range(count)))
    return [sandbox for sandbox in created if sandbox]


async def delete_sandboxes(api: httpx.AsyncClient, sandboxes: Sequence[str]) -> None:
    limit = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def delete(sandbox: str) -> None:
        async with limit:
            await api.delete(f"/sandboxes/{sandbox}")

    await asyncio.gather(*(delete(sandbox) for sandbox in sandboxes))


@asynccontextmanager
async def sandboxes(
    api: httpx.AsyncClient, count: int, *, within: float = 300.0
) -> AsyncIterator[list[str]]:
    """`count` sandboxes (fewer if creating them took longer than `within` seconds),
    deleted afterwards."""
    created = await create_sandboxes(api, count, within=within)
    try:
        yield created
    finally:
        await delete_sandboxes(api, created)
