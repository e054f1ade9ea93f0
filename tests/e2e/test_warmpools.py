"""Warm pools through the public API: definitions, the ready sandboxes they keep, and the
claim that hands each warm sandbox to exactly one caller, also under faults."""

import asyncio
import secrets
from collections import Counter

import asyncpg
import httpx
import pytest

from llmsafespace.devstack import Stack

pytestmark = pytest.mark.stack


def _name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


async def _until(api: httpx.AsyncClient, name: str, ready: int, within: float = 120) -> dict:
    """The pool's status once `availablePods` reaches `ready` and nothing is pending."""
    async with asyncio.timeout(within):
        while True:
            status = (await api.get(f"/warmpools/{name}/status")).json()
            if status["availablePods"] >= ready and status["pendingPods"] == 0:
                return status
            await asyncio.sleep(0.2)


async def _rows(stack: Stack, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(stack.env["DATABASE_URL"])
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


async def _create(api: httpx.AsyncClient, body: dict, attempts: int = 3) -> dict:
    for _ in range(attempts):
        response = await api.post("/sandboxes", json=body, timeout=120)
        if response.status_code == 201:
            return response.json()
        assert response.status_code in (503, 504), response.text
        await asyncio.sleep(1)
    raise AssertionError(f"create kept failing: {response.text}")


async def test_pool_definitions_are_validated_owned_and_managed_by_name(
    api: httpx.AsyncClient, second_user_api: httpx.AsyncClient
) -> None:
    name = _name("crud")
    body = {"name": name, "minSize": 0, "maxSize": 3, "resources": {"memory": "300Mi"}}
    created = await api.post("/warmpools", json=body)
    assert created.status_code == 201, created.text
    pool = created.json()
    assert pool["spec"]["runtime"] == "python:3.11"
    assert pool["spec"]["ttl"] == 3600
    assert pool["spec"]["autoScaling"] == {
        "enabled": False,
        "targetUtilization": 0.8,
        "scaleDownDelay": 300,
    }
    duplicate = await api.post("/warmpools", json=body)
    assert (duplicate.status_code, duplicate.json()["error"]["code"]) == (409, "conflict")

    for bad in (
        {"name": "Not_A_Label"},
        {"name": "x" * 64},
        {"name": _name("sizes"), "minSize": 5, "maxSize": 2},
        {"name": _name("rt"), "runtime": "cobol:85"},
        {"name": _name("extra"), "colour": "blue"},
    ):
        refused = await api.post("/warmpools", json=bad)
        assert refused.status_code == 400, (bad, refused.text)

    patched = await api.patch(f"/warmpools/{name}", json={"maxSize": 5, "ttl": 600})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["spec"]["maxSize"], patched.json()["spec"]["ttl"]) == (5, 600)
    too_small = await api.patch(f"/warmpools/{name}", json={"minSize": 6})
    assert too_small.status_code == 400
    fixed = await api.patch(f"/warmpools/{name}", json={"runtime": "python:3.12"})
    assert fixed.status_code == 400
    assert (await api.patch("/warmpools/no-such-pool", json={"minSize": 1})).status_code == 404

    status = (await api.get(f"/warmpools/{name}/status")).json()
    assert {"name", "availablePods", "assignedPods", "pendingPods", "conditions"} <= set(status)
    assert status["conditions"][0]["type"] == "Ready"
    everything = (await api.get("/warmpools/status")).json()["warmPools"]
    assert name in {pool["name"] for pool in everything}

    # Another user sees neither the pool nor its status, and cannot change it.
    assert (await second_user_api.get(f"/warmpools/{name}")).status_code == 404
    assert (await second_user_api.delete(f"/warmpools/{name}")).status_code == 404
    theirs = (await second_user_api.get("/warmpools")).json()["warmPools"]
    assert name not in {pool["name"] for pool in theirs}

    assert (await api.delete(f"/warmpools/{name}")).status_code == 200
    assert (await api.get(f"/warmpools/{name}")).status_code == 404
    assert (await api.delete(f"/warmpools/{name}")).status_code == 404


async def test_a_pool_keeps_preloaded_sandboxes_ready_and_hands_each_out_once(
    stack: Stack, api: httpx.AsyncClient, sandbox_processes
) -> None:
    name = _name("warm")
    resources = {"memory": "301Mi"}
    created = await api.post(
        "/warmpools",
        json={
            "name": name,
            "minSize": 2,
            "maxSize": 4,
            "resources": resources,
            "preloadScripts": ["import json\npreloaded = 'yes'"],
        },
    )
    assert created.status_code == 201, created.text
    await _until(api, name, 2)

    first = await _create(api, {"resources": resources, "metadata": {"via": "pool"}})
    assert first["fromWarmPool"] is True
    assert first["metadata"] == {"via": "pool"}
    run = await api.post(
        f"/sandboxes/{first['id']}/execute", json={"type": "code", "content": "print(preloaded)"}
    )
    assert run.json()["stdout"] == "yes\n"
    # Replenished right after the claim; `env` needs a cold start.
    status = await _until(api, name, 2, within=30)
    assert status["assignedPods"] == 1
    cold = await _create(api, {"resources": resources, "env": {"A": "1"}})
    assert cold["fromWarmPool"] is False

    # Deleting the pool destroys its ready sandboxes; the claimed one lives on.
    ready = [
        row["id"]
        for row in await _rows(
            stack, "SELECT id FROM warm_sandboxes WHERE pool = $1 AND state = 'ready'", name
        )
    ]
    assert len(ready) == 2
    assert (await api.delete(f"/warmpools/{name}")).status_code == 200
    assert all(sandbox_processes(warm_id) == [] for warm_id in ready)
    again = await api.post(
        f"/sandboxes/{first['id']}/execute", json={"type": "code", "content": "print(1)"}
    )
    assert again.json()["stdout"] == "1\n"
    after = await _create(api, {"resources": resources})
    assert after["fromWarmPool"] is False
    for sandbox in (first, cold, after):
        await api.delete(f"/sandboxes/{sandbox['id']}")


async def _assert_no_double_assignment(stack: Stack, ids: list[str]) -> None:
    rows = await _rows(stack, "SELECT id, runtime_id FROM sandboxes WHERE id = ANY($1)", ids)
    runtime_ids = [row["runtime_id"] for row in rows]
    assert len(rows) == len(ids)
    assert len(set(runtime_ids)) == len(ids), Counter(runtime_ids)
    assigned = await _rows(
        stack,
        "SELECT id, assigned_to FROM warm_sandboxes WHERE state = 'assigned'"
        " AND assigned_to = ANY($1)",
        ids,
    )
    assert len({row["assigned_to"] for row in assigned}) == len(assigned)


async def test_two_hundred_concurrent_creates_against_a_pool_of_fifty(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    name = _name("fifty")
    resources = {"memory": "302Mi"}
    spec = {"name": name, "minSize": 50, "maxSize": 50, "resources": resources}
    assert (await api.post("/warmpools", json=spec)).status_code == 201
    await _until(api, name, 50, within=240)

    gate = asyncio.Semaphore(16)

    async def create_and_run(n: int) -> dict:
        async with gate:
            sandbox = await _create(api, {"resources": resources, "timeout": 900})
            run = await api.post(
                f"/sandboxes/{sandbox['id']}/execute",
                json={"type": "code", "content": f"print({n} * 2)"},
                timeout=120,
            )
            assert run.json()["stdout"] == f"{n * 2}\n", run.text
            return sandbox

    sandboxes = await asyncio.gather(*(create_and_run(n) for n in range(200)))
    ids = [sandbox["id"] for sandbox in sandboxes]
    assert len(set(ids)) == 200
    warm = [sandbox for sandbox in sandboxes if sandbox["fromWarmPool"]]
    assert len(warm) >= 50, len(warm)
    assert any(not sandbox["fromWarmPool"] for sandbox in sandboxes)
    await _assert_no_double_assignment(stack, ids)
    rows = await _rows(stack, "SELECT runtime_id FROM sandboxes WHERE id = ANY($1)", ids)
    assert sum(row["runtime_id"].startswith("wp-") for row in rows) == len(warm)

    await api.patch(f"/warmpools/{name}", json={"minSize": 0})
    await asyncio.gather(*(api.delete(f"/sandboxes/{i}") for i in ids))
    await api.delete(f"/warmpools/{name}")


async def test_killing_warmpool_svc_mid_claim_never_double_assigns(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    name = _name("kill")
    resources = {"memory": "303Mi"}
    spec = {"name": name, "minSize": 10, "maxSize": 10, "resources": resources}
    assert (await api.post("/warmpools", json=spec)).status_code == 201
    await _until(api, name, 10)

    async def killer() -> None:
        await asyncio.sleep(0.05)
        stack.kill("warmpool-svc")

    creates = [_create(api, {"resources": resources}) for _ in range(30)]
    results = await asyncio.gather(killer(), *creates)
    sandboxes = results[1:]
    ids = [sandbox["id"] for sandbox in sandboxes]
    assert len(set(ids)) == 30
    await _assert_no_double_assignment(stack, ids)
    await stack.wait_ready("warmpool-svc")
    for sandbox_id in ids:
        run = await api.post(
            f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": "print(7)"}
        )
        assert run.json()["stdout"] == "7\n"
        await api.delete(f"/sandboxes/{sandbox_id}")
    await api.delete(f"/warmpools/{name}")


async def test_restarts_under_load_lose_and_orphan_nothing(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    from llmsafespace.runtime import LocalConfig, LocalDriver

    name = _name("restart")
    resources = {"memory": "304Mi"}
    spec = {"name": name, "minSize": 4, "maxSize": 4, "resources": resources}
    assert (await api.post("/warmpools", json=spec)).status_code == 201
    await _until(api, name, 4)

    made: list[str] = []
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            response = await api.post("/sandboxes", json={"resources": resources}, timeout=90)
            if response.status_code == 201:
                made.append(response.json()["id"])
            else:
                assert response.status_code in (503, 504), response.text
                await asyncio.sleep(0.2)

    workers = [asyncio.create_task(load()) for _ in range(4)]
    await asyncio.sleep(1)
    await stack.restart("sandbox-svc")
    await asyncio.sleep(1)
    await stack.restart("warmpool-svc")
    await asyncio.sleep(1)
    stop.set()
    await asyncio.gather(*workers)
    assert made
    await _until(api, name, 4)

    for sandbox_id in made:  # nothing lost: every sandbox a client got still runs
        run = await api.post(
            f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": "print(3)"}
        )
        assert run.status_code == 200, (sandbox_id, run.text)
        assert run.json()["stdout"] == "3\n"

    # No row without its runtime, and — once warmpool-svc's sweep has destroyed warm
    # sandboxes whose handover a restart interrupted — no runtime without an owner.
    driver = LocalDriver(LocalConfig(runtime_dir=stack.runtime_dir))
    for _ in range(120):
        alive = {handle.sandbox_id for handle in await driver.list()}
        live = await _rows(stack, "SELECT runtime_id FROM sandboxes WHERE status = 'running'")
        ready = await _rows(
            stack, "SELECT id FROM warm_sandboxes WHERE state IN ('ready', 'pending')"
        )
        owned = {row["runtime_id"] for row in live} | {row["id"] for row in ready}
        assert {row["runtime_id"] for row in live} <= alive
        if alive <= owned:
            break
        await asyncio.sleep(0.5)
    assert alive <= owned, alive - owned
    await asyncio.gather(*(api.delete(f"/sandboxes/{i}") for i in made))
    await api.delete(f"/warmpools/{name}")
