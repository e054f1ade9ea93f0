"""`make up` stopped and started again with LLMSAFESPACE_KEEP_SANDBOXES=1: the sandboxes
keep running through the restart, interpreter state and all (the default sweeps them)."""

import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmsafespace.devstack import Stack, state_dirs

pytestmark = pytest.mark.stack


@pytest.fixture
def fresh_state_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="llmsafespace-restart-", dir="/tmp"))
    yield path
    state_dirs.remove(path)


def _client(stack: Stack) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    return httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60)


async def test_a_stack_that_keeps_sandboxes_serves_them_again_after_a_restart(
    fresh_state_dir: Path,
) -> None:
    first = Stack(fresh_state_dir, api_port=0, keep_sandboxes=True)
    await first.start()
    try:
        async with _client(first) as api:
            created = await api.post("/sandboxes", json={"timeout": 600})
            assert created.status_code == 201, created.text
            sandbox_id = created.json()["id"]
            kept = await api.post(
                f"/sandboxes/{sandbox_id}/execute",
                json={"type": "code", "content": "kept = 'across the restart'"},
            )
            assert kept.status_code == 200, kept.text
    finally:
        await first.stop()

    second = Stack(fresh_state_dir, api_port=0)  # this one sweeps its sandboxes at stop
    await second.start()
    try:
        async with _client(second) as api:
            sandbox = await api.get(f"/sandboxes/{sandbox_id}")
            assert sandbox.json()["status"] == "running", sandbox.text
            after = await api.post(
                f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": "kept"}
            )
            assert after.status_code == 200, after.text
            assert after.json()["result"] == "'across the restart'"
    finally:
        await second.stop()
