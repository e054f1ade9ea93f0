"""Fixtures for driving the running stack the way a client does."""

import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest

from llmsafespace.gateway.accounts import Accounts


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
def sandbox_processes() -> Callable[[str], list[int]]:
    """`processes(sandbox_id)`: host pids of the sandbox — those naming it, and every
    process of the host uid those run as (each sandbox has its own uid)."""
    uids: dict[str, set[int]] = {}

    def processes(sandbox_id: str) -> list[int]:
        pids = [entry.name for entry in Path("/proc").iterdir() if entry.name.isdigit()]
        named = [pid for pid in pids if _mentions(pid, sandbox_id) and _uid(pid) is not None]
        known = uids.setdefault(sandbox_id, set())
        known.update(uid for pid in named if (uid := _uid(pid)) not in (None, 0))
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
    pool = await asyncpg.create_pool(stack.env["DATABASE_URL"], min_size=1, max_size=1)
    try:
        _, key = await Accounts(pool).create_user(f"second-{secrets.token_hex(4)}")
    finally:
        await pool.close()
    return key


@pytest.fixture
async def second_user_api(stack, second_user_key: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {second_user_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
        yield api
