"""What the benchmarks share: their own embedded stack on 127.0.0.1, and percentiles."""

import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from llmsafespace.devstack import Stack

UNLIMITED = json.dumps({"create_sandbox": 10**6, "execute_code": 10**6, "default": 10**6})


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@asynccontextmanager
async def running_stack() -> AsyncIterator[Stack]:
    """A fresh stack in a temporary state dir, rate limits lifted; removed afterwards."""
    state_dir = Path(tempfile.mkdtemp(prefix="llmsafespace-bench-", dir="/tmp"))
    os.chmod(state_dir, 0o755)  # the unprivileged PostgreSQL and sandbox users traverse it
    stack = Stack(state_dir, api_port=0, environ={**os.environ, "GATEWAY_RATE_LIMITS": UNLIMITED})
    await stack.start()
    try:
        yield stack
    finally:
        await stack.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
