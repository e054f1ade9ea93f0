"""Snapshots through the real stack: a workspace (with packages), env and metadata kept,
a sandbox started from it, ownership, and chunks shared between similar snapshots."""

import ast
import asyncio
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from llmsafespace.contracts import quantity_bytes
from llmsafespace.devstack import Stack

from ..kubernetes.object_store import ObjectStore

pytestmark = pytest.mark.stack

SNAPSHOT_BYTES = quantity_bytes("24Mi")  # SANDBOX_SVC_QUOTA_SNAPSHOT_BYTES (tests/conftest.py)
SNAPSHOTS = 2  # SANDBOX_SVC_QUOTA_SNAPSHOTS (tests/conftest.py)
CHUNK = 2**20  # sandbox-svc's chunk size
POOL_SECONDS = 120

PREPARE = """
import pathlib
pathlib.Path('/workspace/data.txt').write_text('kept')
package = pathlib.Path('/workspace/.packages/snappkg')
package.mkdir(parents=True)
(package / '__init__.py').write_text('VALUE = 7')
module = pathlib.Path('/workspace/node_modules/leftpad')
module.mkdir(parents=True)
(module / 'index.js').write_text('module.exports = 1')
"""
CHECK = """
import os, pathlib, snappkg
(snappkg.VALUE, os.environ['GREETING'], pathlib.Path('/workspace/data.txt').read_text(),
 pathlib.Path('/workspace/node_modules/leftpad/index.js').read_text())
"""


async def _run(api: httpx.AsyncClient, sandbox_id: str, code: str) -> dict[str, object]:
    ran = await api.post(f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": code})
    assert ran.status_code == 200, ran.text
    assert ran.json()["status"] == "completed", ran.json()
    body: dict[str, object] = ran.json()
    return body


async def _snapshot(api: httpx.AsyncClient, sandbox_id: str, name: str) -> dict[str, object]:
    taken = await api.post(f"/sandboxes/{sandbox_id}/snapshots", json={"name": name})
    assert taken.status_code == 201, taken.text
    body: dict[str, object] = taken.json()
    return body


async def test_a_sandbox_started_from_a_snapshot_has_its_files_packages_and_env(
    api: httpx.AsyncClient, second_user_api: httpx.AsyncClient
) -> None:
    created = await api.post(
        "/sandboxes",
        json={"timeout": 600, "env": {"GREETING": "hello"}, "metadata": {"project": "p1"}},
    )
    assert created.status_code == 201, created.text
    source = created.json()["id"]
    await _run(api, source, PREPARE)
    snapshot = await _snapshot(api, source, "prepared")
    assert (snapshot["name"], snapshot["sandboxId"]) == ("prepared", source)
    assert snapshot["envNames"] == ["GREETING"]
    assert (await api.delete(f"/sandboxes/{source}")).status_code == 200

    others = await second_user_api.post("/sandboxes", json={"snapshot": snapshot["id"]})
    assert others.status_code == 404, others.text
    assert (await second_user_api.get(f"/snapshots/{snapshot['id']}")).status_code == 404
    assert (await second_user_api.delete(f"/snapshots/{snapshot['id']}")).status_code == 404

    restored = await api.post("/sandboxes", json={"snapshot": snapshot["id"], "timeout": 600})
    assert restored.status_code == 201, restored.text
    assert restored.json()["metadata"] == {"project": "p1"}
    checked = await _run(api, restored.json()["id"], CHECK)
    assert checked["result"] == "(7, 'hello', 'kept', 'module.exports = 1')"
    await api.delete(f"/sandboxes/{restored.json()['id']}")

    listed = await api.get("/snapshots", params={"limit": 100})
    assert snapshot["id"] in {item["id"] for item in listed.json()["snapshots"]}
    assert (await api.delete(f"/snapshots/{snapshot['id']}")).status_code == 200
    assert (await api.get(f"/snapshots/{snapshot['id']}")).status_code == 404


VENV = """
import os, subprocess
subprocess.run(['python3', '-m', 'venv', '--without-pip', '/workspace/venv'], check=True)
open('/workspace/data.txt', 'w').write('kept')
os.symlink('data.txt', '/workspace/inner_link')
"""
CHECK_VENV = """
import os, subprocess
ran = subprocess.run(['/workspace/venv/bin/python', '-c', 'import sys; print(sys.prefix)'],
                     capture_output=True, text=True)
(sorted((name, os.readlink(f'/workspace/venv/bin/{name}'))
        for name in os.listdir('/workspace/venv/bin')
        if os.path.islink(f'/workspace/venv/bin/{name}')),
 os.readlink('/workspace/inner_link'), ran.stdout.strip(), ran.returncode)
"""


async def test_a_venv_restored_from_a_snapshot_keeps_its_links_and_runs(
    api: httpx.AsyncClient,
) -> None:
    """A venv's bin/python is a link out of the workspace (to the system's python), its
    other names links beside it: both kinds come back as links."""
    created = await api.post("/sandboxes", json={"timeout": 600})
    assert created.status_code == 201, created.text
    source = created.json()["id"]
    await _run(api, source, VENV)
    before = (await _run(api, source, CHECK_VENV))["result"]
    links, inner, prefix, code = ast.literal_eval(str(before))
    assert any(target.startswith("/") for _, target in links), links
    assert (inner, prefix, code) == ("data.txt", "/workspace/venv", 0)
    snapshot = await _snapshot(api, source, "venv")
    await api.delete(f"/sandboxes/{source}")
    restored = await api.post("/sandboxes", json={"snapshot": snapshot["id"], "timeout": 600})
    assert restored.status_code == 201, restored.text
    after = await _run(api, restored.json()["id"], CHECK_VENV)
    assert after["result"] == before
    await api.delete(f"/sandboxes/{restored.json()['id']}")
    assert (await api.delete(f"/snapshots/{snapshot['id']}")).status_code == 200


async def test_snapshots_of_near_identical_workspaces_share_their_chunks(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post("/sandboxes", json={"timeout": 600})
    sandbox_id = created.json()["id"]
    await _run(
        api,
        sandbox_id,
        "import os, pathlib\n"
        "pathlib.Path('/workspace/blob.bin').write_bytes(os.urandom(8 * 2**20))\n"
        "pathlib.Path('/workspace/version.txt').write_text('v1')",
    )
    first = await _snapshot(api, sandbox_id, "v1")
    await _run(api, sandbox_id, "pathlib.Path('/workspace/version.txt').write_text('v2')")
    second = await _snapshot(api, sandbox_id, "v2")
    assert first["sizeBytes"] > 8 * 2**20
    assert first["storedBytes"] + second["storedBytes"] < 1.5 * first["sizeBytes"], (first, second)
    await api.delete(f"/sandboxes/{sandbox_id}")
    for snapshot in (first, second):
        assert (await api.delete(f"/snapshots/{snapshot['id']}")).status_code == 200


WRITE_LARGE = """
import hashlib, os, pathlib
tmp = os.statvfs('/tmp')
digests = {}
for index in range(5):
    data = os.urandom(8 << 20)
    path = pathlib.Path(f'/workspace/large/part{index}.bin')
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    digests[path.name] = hashlib.sha256(data).hexdigest()
(tmp.f_blocks * tmp.f_frsize, sorted(digests.items()))
"""
READ_LARGE = """
import hashlib, pathlib
sorted((path.name, hashlib.sha256(path.read_bytes()).hexdigest())
       for path in pathlib.Path('/workspace/large').iterdir())
"""


@pytest.mark.local_driver("the fake kubelet's /tmp is a host directory, not a sized tmpfs")
async def test_a_workspace_larger_than_the_sandboxes_tmp_snapshots_and_restores(
    api: httpx.AsyncClient,
) -> None:
    # 128Mi of memory: /tmp is a tmpfs of a quarter of it, smaller than the 40 MiB of
    # random (incompressible) data, so the archive must stream rather than be staged.
    small = {"timeout": 600, "resources": {"memory": "128Mi"}, "useWarmPool": False}
    created = await api.post("/sandboxes", json=small)
    assert created.status_code == 201, created.text
    source = created.json()["id"]
    tmp_bytes, digests = ast.literal_eval(str((await _run(api, source, WRITE_LARGE))["result"]))
    assert tmp_bytes < 40 << 20
    snapshot = await _snapshot(api, source, "large")
    assert snapshot["sizeBytes"] > 40 << 20
    await api.delete(f"/sandboxes/{source}")
    restored = await api.post("/sandboxes", json={**small, "snapshot": snapshot["id"]})
    assert restored.status_code == 201, restored.text
    checked = await _run(api, restored.json()["id"], READ_LARGE)
    assert checked["result"] == repr(digests)
    await api.delete(f"/sandboxes/{restored.json()['id']}")
    await api.delete(f"/snapshots/{snapshot['id']}")


@pytest.fixture
async def user(stack: Stack, api: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh plain user (admins are exempt from the snapshot quota)."""
    created = await api.post("/users", json={"username": f"snap-{secrets.token_hex(4)}"})
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['apiKey']}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as client:
        yield client


def _chunk_files(stack: Stack, object_store: ObjectStore | None) -> set[str]:
    """The chunks stored: in the bucket (Kubernetes variant), else in the state dir."""
    if object_store is not None:
        return object_store.chunks()
    return {path.name for path in (stack.state_dir / "snapshots").glob("*/*")}


async def test_a_snapshot_past_the_byte_quota_stops_early_and_leaves_no_chunks(
    stack: Stack, object_store: ObjectStore | None, user: httpx.AsyncClient
) -> None:
    created = await user.post("/sandboxes", json={"timeout": 600})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    write = "import os, pathlib\npathlib.Path('/workspace/{}').write_bytes(os.urandom({}))"
    await _run(user, sandbox_id, write.format("first.bin", 8 * CHUNK))
    kept = await _snapshot(user, sandbox_id, "within")
    chunks = _chunk_files(stack, object_store)

    await _run(user, sandbox_id, write.format("second.bin", 24 * CHUNK))
    refused = await user.post(f"/sandboxes/{sandbox_id}/snapshots", json={"name": "past"})
    assert refused.status_code == 429, refused.text
    details = refused.json()["error"]["details"]
    assert (details["resource"], details["limit"]) == ("snapshotBytes", SNAPSHOT_BYTES)
    assert details["current"] == kept["sizeBytes"]
    # The capture stopped at the first chunk past the quota, not after 32 MiB.
    assert details["requested"] <= SNAPSHOT_BYTES - kept["sizeBytes"] + CHUNK
    # What it stored went again; the kept snapshot's chunks (some shared) stayed.
    assert _chunk_files(stack, object_store) == chunks

    await user.delete(f"/sandboxes/{sandbox_id}")
    assert (await user.delete(f"/snapshots/{kept['id']}")).status_code == 200


async def test_a_snapshot_past_the_count_quota_is_refused_before_it_stores_anything(
    stack: Stack, object_store: ObjectStore | None, user: httpx.AsyncClient
) -> None:
    created = await user.post("/sandboxes", json={"timeout": 600})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    write = "import os, pathlib\npathlib.Path('/workspace/{}').write_bytes(os.urandom({}))"
    kept = []
    for index in range(SNAPSHOTS):
        await _run(user, sandbox_id, write.format(f"{index}.bin", CHUNK))
        kept.append(await _snapshot(user, sandbox_id, f"kept-{index}"))
    chunks = _chunk_files(stack, object_store)

    await _run(user, sandbox_id, write.format("new.bin", CHUNK))  # chunks no snapshot has
    refused = await user.post(f"/sandboxes/{sandbox_id}/snapshots", json={"name": "one more"})
    assert refused.status_code == 429, refused.text
    details = refused.json()["error"]["details"]
    assert (details["resource"], details["current"]) == ("snapshots", SNAPSHOTS)
    assert _chunk_files(stack, object_store) == chunks

    await user.delete(f"/sandboxes/{sandbox_id}")
    for snapshot in kept:
        assert (await user.delete(f"/snapshots/{snapshot['id']}")).status_code == 200


async def _pool_ready(api: httpx.AsyncClient, pool: str) -> None:
    """Once the pool has a ready sandbox and none starting."""
    async with asyncio.timeout(POOL_SECONDS):
        while True:
            status = (await api.get(f"/warmpools/{pool}/status")).json()
            if status["availablePods"] >= 1 and status["pendingPods"] == 0:
                return
            await asyncio.sleep(0.2)


async def test_a_warm_pool_built_from_a_snapshot_serves_creates_from_it_warm(
    api: httpx.AsyncClient, second_user_api: httpx.AsyncClient
) -> None:
    resources = {"memory": "317Mi"}  # no other pool keeps sandboxes of this size
    created = await api.post(
        "/sandboxes",
        json={"env": {"GREETING": "hello"}, "resources": resources, "useWarmPool": False},
    )
    assert created.status_code == 201, created.text
    source = created.json()["id"]
    await _run(api, source, "open('/workspace/data.txt', 'w').write('kept')")
    snapshot = await _snapshot(api, source, "for a pool")
    await api.delete(f"/sandboxes/{source}")

    pool = f"snap-{secrets.token_hex(3)}"
    spec = {"name": pool, "snapshot": snapshot["id"], "minSize": 1, "maxSize": 1}
    other = await second_user_api.post("/warmpools", json={**spec, "resources": resources})
    assert other.status_code == 404, other.text  # another user's snapshot
    made = await api.post("/warmpools", json={**spec, "resources": resources})
    assert made.status_code == 201, made.text
    try:
        await _pool_ready(api, pool)
        warm = await api.post(
            "/sandboxes", json={"snapshot": snapshot["id"], "resources": resources}
        )
        assert warm.status_code == 201, warm.text
        assert warm.json()["fromWarmPool"] is True, warm.json()
        checked = await _run(
            api,
            warm.json()["id"],
            "import os\n(open('/workspace/data.txt').read(), os.environ['GREETING'])",
        )
        assert checked["result"] == "('kept', 'hello')", checked
        await api.delete(f"/sandboxes/{warm.json()['id']}")
        # The pool refills; a create not from the snapshot does not take its sandboxes.
        await _pool_ready(api, pool)
        plain = await api.post("/sandboxes", json={"resources": resources})
        assert plain.status_code == 201, plain.text
        assert plain.json()["fromWarmPool"] is False, plain.json()
        await api.delete(f"/sandboxes/{plain.json()['id']}")
        # The pool needs the snapshot to refill: it cannot be deleted before the pool.
        refused = await api.delete(f"/snapshots/{snapshot['id']}")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["details"]["warmPools"] == [pool], refused.text
    finally:
        await api.delete(f"/warmpools/{pool}")
    assert (await api.delete(f"/snapshots/{snapshot['id']}")).status_code == 200
