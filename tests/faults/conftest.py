"""Fault injection against real processes: a stack of these tests' own (its servers and
services get killed and restarted, which must not disturb the rest of the suite),
gateway replicas that can be killed, and ways to look at what a fault left behind."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from llmsafespace.devstack import Stack, state_dirs
from llmsafespace.devstack.ports import free_port


@pytest.fixture(scope="package")
async def stack() -> AsyncIterator[Stack]:
    """Overrides the session stack for tests/faults: embedded servers of its own (never
    the NATS_URL/DATABASE_URL/REDIS_URL ones: these tests stop them) in their own state
    directory, with rate limits lifted."""
    # Not tmp_path: the unprivileged PostgreSQL and sandbox users traverse its parents.
    state_dir = Path(tempfile.mkdtemp(prefix="llmsafespace-faults-", dir="/tmp"))
    unlimited = json.dumps({"create_sandbox": 10**6, "execute_code": 10**6, "default": 10**6})
    external = {"NATS_URL", "DATABASE_URL", "REDIS_URL"}
    environ = {key: value for key, value in os.environ.items() if key not in external}
    environ["GATEWAY_RATE_LIMITS"] = unlimited
    running = Stack(state_dir, api_port=0, environ=environ)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
        state_dirs.remove(state_dir)


@pytest.fixture
async def database(stack: Stack) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the stack's PostgreSQL, to look at rows the way an operator would."""
    connection = await asyncpg.connect(stack.servers.postgres.url)
    yield connection
    await connection.close()


@dataclass
class Replica:
    """An extra api-gateway process on the stack's bus, database and cache."""

    url: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def gateway_replica(stack: Stack) -> Iterator[Callable[..., Replica]]:
    """`gateway_replica(**env)` starts another gateway (extra `GATEWAY_*` settings in env)
    and waits until it is ready; every replica is stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> Replica:
        port = free_port()
        environment = {**stack.services["api-gateway"].env, **env, "GATEWAY_HTTP_PORT": str(port)}
        process = subprocess.Popen(
            [sys.executable, "-m", "llmsafespace.gateway"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError("the gateway replica exited")
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    return Replica(f"{url}/api/v1", process)
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the gateway replica did not become ready")

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
