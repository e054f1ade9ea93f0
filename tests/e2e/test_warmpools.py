"""Warm pools through the public API: definitions, the ready sandboxes they keep, and the
claim that hands each warm sandbox to exactly one caller, also under faults."""

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import nats
import nats.errors
import pytest

from llmsafespace.contracts import subjects
from llmsafespace.devstack import Stack
from llmsafespace.runtime import Driver

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

    # Without `maxSize`, a `minSize` over 10 is the maximum too: an ordinary user's pool of
    # 11 is refused for its size (403, as documented), not for a `maxSize` never sent.
    large = await second_user_api.post("/warmpools", json={"name": _name("big"), "minSize": 11})
    assert large.status_code == 403, large.text
    assert large.json()["error"]["details"]["requested"] == 11

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
    # Replenished right after the claim; `useWarmPool: false` asks for a cold start.
    status = await _until(api, name, 2, within=30)
    assert status["assignedPods"] == 1
    cold = await _create(api, {"resources": resources, "useWarmPool": False})
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


async def _status_until(
    api: httpx.AsyncClient, name: str, done: Callable[[dict], bool], within: float = 180
) -> dict:
    """The pool's status once `done(status)` holds (polled; the bound is only a backstop)."""
    async with asyncio.timeout(within):
        while True:
            status = (await api.get(f"/warmpools/{name}/status")).json()
            if done(status):
                return status
            await asyncio.sleep(0.2)


async def _ids(stack: Stack, name: str, state: str) -> set[str]:
    query = "SELECT id FROM warm_sandboxes WHERE pool = $1 AND state = $2"
    return {row["id"] for row in await _rows(stack, query, name, state)}


async def test_autoscaling_grows_the_pool_under_demand_and_shrinks_it_when_claims_stop(
    stack: Stack, api: httpx.AsyncClient, sandbox_processes
) -> None:
    name = _name("scale")
    resources = {"memory": "305Mi"}
    scaling = {"enabled": True, "targetUtilization": 0.5, "scaleDownDelay": 3600}
    spec = {"name": name, "minSize": 1, "maxSize": 4, "resources": resources}
    created = await api.post("/warmpools", json={**spec, "autoScaling": scaling})
    assert created.status_code == 201, created.text
    before = await _until(api, name, 1)
    assert (before["desiredPods"], before["availablePods"]) == (1, 1)

    # Two claims at a target utilization of 0.5 want four ready sandboxes.
    claimed = [await _create(api, {"resources": resources})]
    await _until(api, name, 1)  # replenished (and grown to 2), so the next claim hits too
    claimed.append(await _create(api, {"resources": resources}))
    assert all(sandbox["fromWarmPool"] for sandbox in claimed)
    grown = await _status_until(
        api, name, lambda s: s["desiredPods"] == 4 and s["availablePods"] == 4
    )
    assert grown["assignedPods"] == 2
    assert grown["lastScaleTime"] is not None
    ready = next(c for c in grown["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["message"]) == ("True", "4 of 4 ready")
    port = stack.services["warmpool-svc"].port
    async with httpx.AsyncClient() as plain:
        metrics = (await plain.get(f"http://127.0.0.1:{port}/metrics")).text
        # Each sandbox-svc replica counts the creates it decided: read them all.
        creates = "".join(
            [
                (await plain.get(f"http://127.0.0.1:{replica.port}/metrics")).text
                for replica in stack.replicas["sandbox-svc"]
            ]
        )
    assert 'warm_pool_hit_ratio{runtime="python:3.11"}' in creates
    assert 'warm_pool_requests_total{outcome="hit",runtime="python:3.11"}' in creates
    assert f'warm_pool_sandboxes{{pool="{name}",state="assigned"}}' in metrics

    # No claim for scaleDownDelay: back to minSize; the claimed sandboxes live on.
    surplus = await _ids(stack, name, "ready")
    patched = await api.patch(
        f"/warmpools/{name}", json={"autoScaling": {**scaling, "scaleDownDelay": 1}}
    )
    assert patched.status_code == 200, patched.text
    shrunk = await _status_until(
        api, name, lambda s: s["desiredPods"] == 1 and s["availablePods"] == 1
    )
    assert shrunk["lastScaleTime"] > grown["lastScaleTime"]
    assert shrunk["assignedPods"] == 2
    gone = surplus - await _ids(stack, name, "ready")
    assert len(gone) == 3
    await _events_naming(stack, name, "scaled", gone)  # published once destroyed
    assert all(sandbox_processes(warm_id) == [] for warm_id in gone)
    for sandbox in claimed:
        run = await api.post(
            f"/sandboxes/{sandbox['id']}/execute", json={"type": "code", "content": "print(5)"}
        )
        assert run.json()["stdout"] == "5\n", run.text
        await api.delete(f"/sandboxes/{sandbox['id']}")
    await api.delete(f"/warmpools/{name}")


async def test_ready_sandboxes_past_their_ttl_are_recycled(
    stack: Stack, api: httpx.AsyncClient, sandbox_processes
) -> None:
    name = _name("ttl")
    spec = {"name": name, "minSize": 2, "maxSize": 2, "ttl": 2, "resources": {"memory": "306Mi"}}
    assert (await api.post("/warmpools", json=spec)).status_code == 201
    await _until(api, name, 2)
    first = await _ids(stack, name, "ready")
    assert len(first) == 2

    async with asyncio.timeout(180):  # replaced by fresh ones, then taken out of the pool
        while True:
            current = await _ids(stack, name, "ready")
            if len(current) == 2 and not current & first:
                break
            await asyncio.sleep(0.2)
    await _events_naming(stack, name, "recycled", first)  # published once destroyed
    assert all(sandbox_processes(warm_id) == [] for warm_id in first)
    await api.delete(f"/warmpools/{name}")


async def _events_naming(stack: Stack, pool: str, event: str, runtime_ids: set[str]) -> None:
    """Wait for the pool's `event` events (in JetStream) to name every one of `runtime_ids`."""
    connection = await nats.connect(**stack.nats_options("audit-svc"))
    named: set[str] = set()
    try:
        subscription = await connection.jetstream().subscribe(
            subjects.warmpool_event(pool, event), ordered_consumer=True
        )
        async with asyncio.timeout(60):
            while not runtime_ids <= named:
                message = await subscription.next_msg(timeout=60)
                named.update(json.loads(message.data)["runtimeIds"])
        await subscription.unsubscribe()
    finally:
        await connection.close()


async def test_claim_time_env_metadata_and_lifetime_apply_to_a_warm_sandbox(
    stack: Stack, api: httpx.AsyncClient, sandbox_processes
) -> None:
    name = _name("custom")
    resources = {"memory": "307Mi"}
    spec = {"name": name, "minSize": 1, "maxSize": 1, "resources": resources}
    created = await api.post("/warmpools", json={**spec, "preloadScripts": ["warm = 'kept'"]})
    assert created.status_code == 201, created.text
    await _until(api, name, 1)
    ready = await _ids(stack, name, "ready")

    tag = secrets.token_hex(4)
    body = {"resources": resources, "metadata": {"agent": tag}, "timeout": 4, "env": {"TAG": tag}}
    asked = datetime.now(UTC)
    sandbox = await _create(api, body)
    answered = datetime.now(UTC)
    assert sandbox["fromWarmPool"] is True
    assert (sandbox["metadata"], sandbox["timeout"]) == ({"agent": tag}, 4)
    # The claim's timeout, not the pool's, counted from its adoption: the moment the
    # sandbox started running lies within the create (one host, one clock).
    adopted = datetime.fromisoformat(sandbox["expiresAt"]) - timedelta(seconds=4)
    assert asked <= adopted <= answered, (asked, adopted, answered)
    rows = await _rows(stack, "SELECT runtime_id FROM sandboxes WHERE id = $1", sandbox["id"])
    runtime_id = rows[0]["runtime_id"]
    assert runtime_id in ready  # the warm runtime itself, preloaded state and all
    code = "import os; print(warm, os.environ['TAG'])"
    run = await api.post(
        f"/sandboxes/{sandbox['id']}/execute", json={"type": "code", "content": code}
    )
    assert run.json()["stdout"] == f"kept {tag}\n", run.text
    command = {"type": "command", "content": "echo $TAG"}
    run = await api.post(f"/sandboxes/{sandbox['id']}/execute", json=command)
    assert run.json()["stdout"] == f"{tag}\n", run.text
    found = (await api.get("/sandboxes", params={"metadata.agent": tag})).json()["sandboxes"]
    assert [item["id"] for item in found] == [sandbox["id"]]

    async with asyncio.timeout(60):  # its own lifetime, not the pool's, ends it
        while True:
            ended = (await api.get(f"/sandboxes/{sandbox['id']}")).json()
            if ended["status"] == "terminated":
                break
            await asyncio.sleep(0.2)
    assert ended["statusReason"] == "expired"
    assert sandbox_processes(runtime_id) == []
    await api.delete(f"/warmpools/{name}")


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
    rows = await _rows(stack, "SELECT id, runtime_id FROM sandboxes WHERE id = ANY($1)", ids)
    assert sum(row["runtime_id"] != row["id"] for row in rows) == len(warm)  # adopted ones

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

    async def killer() -> None:  # once the first claims have taken sandboxes from the pool
        async with asyncio.timeout(120):
            while True:
                status = (await api.get(f"/warmpools/{name}/status")).json()
                if status["availablePods"] < 10:
                    break
                await asyncio.sleep(0.01)
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
        assert run.json().get("stdout") == "7\n", (sandbox_id, run.text)
        await api.delete(f"/sandboxes/{sandbox_id}")
    await api.delete(f"/warmpools/{name}")


async def test_restarts_under_load_lose_and_orphan_nothing(
    stack: Stack, api: httpx.AsyncClient, runtime_driver: Driver
) -> None:
    name = _name("restart")
    resources = {"memory": "304Mi"}
    spec = {"name": name, "minSize": 4, "maxSize": 4, "resources": resources}
    assert (await api.post("/warmpools", json=spec)).status_code == 201
    await _until(api, name, 4)

    made: list[str] = []
    created = asyncio.Condition()
    stop = asyncio.Event()

    async def load() -> None:
        while not stop.is_set():
            response = await api.post("/sandboxes", json={"resources": resources}, timeout=90)
            if response.status_code == 201:
                async with created:
                    made.append(response.json()["id"])
                    created.notify_all()
            else:
                assert response.status_code in (503, 504), response.text
                await asyncio.sleep(0.2)

    async def more_created() -> None:
        """Until the load has made another sandbox (the stack serves creates again)."""
        async with created:
            count = len(made)
            await asyncio.wait_for(created.wait_for(lambda: len(made) > count), 180)

    workers = [asyncio.create_task(load()) for _ in range(4)]
    await more_created()  # each restart meets creates in flight
    await stack.restart("sandbox-svc")
    await more_created()
    await stack.restart("warmpool-svc")
    await more_created()
    stop.set()
    await asyncio.gather(*workers)
    assert made
    await _until(api, name, 4)

    for sandbox_id in made:  # nothing lost: every sandbox a client got still runs
        run = await api.post(
            f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": "print(3)"}
        )
        if run.status_code != 200:
            sandbox = (await api.get(f"/sandboxes/{sandbox_id}")).text
            raise AssertionError(f"{sandbox_id} lost: {run.text}; {sandbox}")
        assert run.json()["stdout"] == "3\n"

    # No row without its runtime, and — once sandbox-svc's reaper has released the warm
    # claims a restart left unsettled — no runtime without an owner.
    for _ in range(120):
        alive = {handle.runtime_id for handle in await runtime_driver.list()}
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
