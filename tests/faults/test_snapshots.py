"""sandbox-svc killed while it captures a snapshot: its client is answered 503 once the
service has been silent for the bus's keepalive silence (not after the gateway's
workspace timeout). The chunks the capture stored have no snapshot row, and its own sweep
never ran. The next sandbox-svc to start sweeps the chunks no snapshot uses, and never
one a snapshot uses."""

import asyncio

import asyncpg
import httpx
import pytest

from llmsafespace.devstack import Stack
from llmsafespace.servicekit.keepalive import SILENCE

from .probes import eventually

pytestmark = pytest.mark.stack

MIB = 1024 * 1024


def chunk_files(stack: Stack) -> set[str]:
    """The chunks in the local chunk store (the stack's snapshot dir)."""
    return {path.name for path in (stack.state_dir / "snapshots").glob("*/*")}


async def run(api: httpx.AsyncClient, sandbox_id: str, command: str) -> None:
    ran = await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": "command", "content": command}
    )
    assert ran.json()["exitCode"] == 0, ran.text


async def test_killing_sandbox_svc_during_a_snapshot_leaves_no_chunk_behind(
    stack: Stack, api: httpx.AsyncClient, database: asyncpg.Connection
) -> None:
    created = await api.post("/sandboxes", json={"timeout": 900})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    await run(api, sandbox_id, "head -c 3M /dev/urandom > /workspace/kept.bin")
    taken = await api.post(f"/sandboxes/{sandbox_id}/snapshots", json={"name": "kept"})
    assert taken.status_code == 201, taken.text
    kept: list[str] = await database.fetchval(
        "SELECT chunks FROM snapshots WHERE id = $1", taken.json()["id"]
    )
    # Random bytes: every chunk of the next capture is new, and it takes seconds.
    await run(api, sandbox_id, "head -c 300M /dev/urandom > /workspace/big.bin")
    before = chunk_files(stack)
    capture = asyncio.create_task(
        api.post(f"/sandboxes/{sandbox_id}/snapshots", json={"name": "cut"}, timeout=300)
    )

    async def capturing() -> bool:
        return len(chunk_files(stack) - before) >= 5

    await eventually(capturing)
    killed = stack.services["sandbox-svc"].process
    assert killed is not None
    stack.kill("sandbox-svc")
    await asyncio.to_thread(killed.wait, 30)
    left = chunk_files(stack) - before
    referenced = await database.fetchval("SELECT count(*) FROM snapshots WHERE chunks && $1", left)
    assert left
    assert referenced == 0

    await stack.wait_ready("sandbox-svc")

    async def swept() -> bool:
        return not chunk_files(stack) & left

    await eventually(swept)
    assert set(kept) <= chunk_files(stack)
    cut = await asyncio.wait_for(capture, 2 * SILENCE)  # long since answered, or soon
    assert cut.status_code == 503, cut.text
    assert "stopped during the request" in cut.json()["error"]["message"]
    assert (await api.delete(f"/snapshots/{taken.json()['id']}")).status_code == 200
    assert (await api.delete(f"/sandboxes/{sandbox_id}")).status_code == 200


async def _capturing(
    stack: Stack, api: httpx.AsyncClient
) -> tuple[str, asyncio.Task[httpx.Response]]:
    """A sandbox whose 200 MB snapshot is being captured (chunks are being stored)."""
    created = await api.post("/sandboxes", json={"timeout": 900})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    await run(api, sandbox_id, "head -c 200M /dev/urandom > /workspace/big.bin")
    before = chunk_files(stack)
    capture = asyncio.create_task(
        api.post(f"/sandboxes/{sandbox_id}/snapshots", json={"name": "raced"}, timeout=300)
    )

    async def capturing() -> bool:
        return len(chunk_files(stack) - before) >= 2

    await eventually(capturing)
    return sandbox_id, capture


async def test_a_pause_during_a_snapshot_waits_for_it(stack: Stack, api: httpx.AsyncClient) -> None:
    """The capture froze under the pause and failed a minute later (503)."""
    sandbox_id, capture = await _capturing(stack, api)
    paused = await api.post(f"/sandboxes/{sandbox_id}/pause", timeout=300)
    taken = await capture
    assert taken.status_code == 201, taken.text
    assert paused.json()["status"] == "paused", paused.text
    again = await api.post(f"/sandboxes/{sandbox_id}/snapshots", json={"name": "late"})
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "sandbox_paused"
    assert (await api.delete(f"/snapshots/{taken.json()['id']}")).status_code == 200
    assert (await api.delete(f"/sandboxes/{sandbox_id}")).status_code == 200


async def test_a_snapshot_cut_by_deleting_its_sandbox_says_so(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """409 `sandbox_not_running`, not 503 `runtime_unavailable` (the host is fine)."""
    sandbox_id, capture = await _capturing(stack, api)
    assert (await api.delete(f"/sandboxes/{sandbox_id}")).status_code == 200
    cut = await capture
    assert cut.status_code == 409, cut.text
    assert cut.json()["error"]["code"] == "sandbox_not_running"
    assert "during the snapshot" in cut.json()["error"]["message"]


async def test_a_create_whose_snapshot_is_deleted_during_its_restore_is_a_409(
    stack: Stack, api: httpx.AsyncClient, database: asyncpg.Connection
) -> None:
    """Not 503 `runtime_unavailable`: the host is fine, the snapshot went."""
    created = await api.post("/sandboxes", json={"timeout": 900})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    await run(api, sandbox_id, "head -c 200M /dev/urandom > /workspace/big.bin")
    taken = await api.post(f"/sandboxes/{sandbox_id}/snapshots", json={"name": "gone"}, timeout=300)
    assert taken.status_code == 201, taken.text
    snapshot_id = taken.json()["id"]
    before = {row["id"] for row in await database.fetch("SELECT id FROM sandboxes")}
    body = {"snapshot": snapshot_id, "useWarmPool": False, "timeout": 300}
    restoring = asyncio.create_task(api.post("/sandboxes", json=body, timeout=300))

    async def creating() -> bool:
        rows = await database.fetch("SELECT id FROM sandboxes WHERE status = 'creating'")
        return bool({row["id"] for row in rows} - before)

    await eventually(creating)
    assert (await api.delete(f"/snapshots/{snapshot_id}")).status_code == 200
    refused = await restoring
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "conflict"
    assert "deleted during the restore" in refused.json()["error"]["message"]
    assert (await api.delete(f"/sandboxes/{sandbox_id}")).status_code == 200
