"""Fixtures for driving the running stack the way a client does."""

import contextlib
import json
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from llmsafespace.devstack.ports import free_port
from llmsafespace.runtime import Driver, KubernetesDriver, LocalConfig, LocalDriver


def _uid(pid: str) -> int | None:
    """The real uid of a live process; None for a zombie (dead, holding nothing) or a
    process gone meanwhile."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
    except OSError:
        return None
    if fields["State"].split()[0] == "Z":
        return None
    return int(fields["Uid"].split()[0])


def _mentions(pid: str, text: str) -> bool:
    try:
        return text.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.fixture
def sandbox_processes(stack) -> Callable[[str], list[int]]:
    """`processes(sandbox_id)`: host pids of the sandbox — those naming it, and every
    process of the host uid those run as or its local `meta.json` records (each sandbox
    has its own uid; bwrap's command line no longer names it)."""
    uids: dict[str, set[int]] = {}

    def processes(sandbox_id: str) -> list[int]:
        pids = [entry.name for entry in Path("/proc").iterdir() if entry.name.isdigit()]
        named = [pid for pid in pids if _mentions(pid, sandbox_id) and _uid(pid) is not None]
        known = uids.setdefault(sandbox_id, set())
        known.update(uid for pid in named if (uid := _uid(pid)) not in (None, 0))
        meta = stack.runtime_dir / "sandboxes" / sandbox_id / "meta.json"
        with contextlib.suppress(OSError, ValueError, KeyError):
            known.add(int(json.loads(meta.read_text())["uid"]))
        return sorted(int(pid) for pid in pids if pid in named or _uid(pid) in known)

    return processes


@pytest.fixture(scope="module")
async def sandbox_id(stack) -> AsyncIterator[str]:
    """One running sandbox shared by a module's tests (for tests that only read)."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
        created = await api.post("/sandboxes", json={"timeout": 900})
        assert created.status_code == 201, created.text
        identifier: str = created.json()["id"]
        yield identifier
        await api.delete(f"/sandboxes/{identifier}")


@pytest.fixture(scope="session")
async def second_user_key(stack) -> str:
    """A plain user's key, made through the admin API."""
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers) as admin:
        created = await admin.post("/users", json={"username": f"second-{secrets.token_hex(4)}"})
    assert created.status_code == 201, created.text
    key: str = created.json()["apiKey"]
    return key


@pytest.fixture
async def second_user_api(stack, second_user_key: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {second_user_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
        yield api


@pytest.fixture
def start_gateway(stack) -> Iterator[Callable[..., str]]:
    """`start_gateway(**env)`: another gateway process on the same bus, database and cache
    (extra `GATEWAY_*` settings in `env`); returns its API URL. Stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**env: str) -> str:
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
                raise RuntimeError("the extra gateway exited")
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    return f"{url}/api/v1"
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the extra gateway did not become ready")

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
async def runtime_driver(stack, cluster) -> AsyncIterator[Driver]:
    """A driver configured like the services', to look at the runtimes they started."""
    driver: Driver
    if cluster is None:
        driver = LocalDriver(LocalConfig(runtime_dir=stack.runtime_dir))
    else:
        driver = KubernetesDriver(cluster.config())
    yield driver
    await driver.close()
