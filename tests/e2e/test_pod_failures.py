"""On Kubernetes a sandbox's Pod can fail under it (evicted, crashed, deleted by someone):
sandbox-svc notices, marks the sandbox `failed` with the reason, emits the event and
removes what the Pod left."""

import asyncio
import json
import secrets

import asyncpg
import httpx
import nats
import pytest

from llmsafespace.contracts import subjects
from llmsafespace.devstack import Stack
from llmsafespace.runtime.kubernetes import names

from ..kubernetes.cluster import NAMESPACE, FakeCluster

pytestmark = [pytest.mark.stack, pytest.mark.kubernetes_driver]


async def _ended(api: httpx.AsyncClient, sandbox_id: str, within: float = 30) -> dict:
    async with asyncio.timeout(within):
        while True:
            sandbox = (await api.get(f"/sandboxes/{sandbox_id}")).json()
            if sandbox["status"] not in ("creating", "running"):
                return sandbox
            await asyncio.sleep(0.2)


async def _events(stack: Stack, sandbox_id: str) -> list[str]:
    """The sandbox's event names in JetStream so far."""
    connection = await nats.connect(**stack.nats_options("audit-svc"))
    try:
        js = connection.jetstream()
        subscription = await js.subscribe(
            subjects.sandbox_event(sandbox_id, "*"), ordered_consumer=True
        )
        seen: list[str] = []
        while True:
            try:
                message = await subscription.next_msg(timeout=1)
            except nats.errors.TimeoutError:
                break
            json.loads(message.data)
            seen.append(message.subject.rsplit(".", 1)[-1])
        await subscription.unsubscribe()
    finally:
        await connection.close()
    return seen


def _objects_of(cluster: FakeCluster, runtime_id: str) -> list[str]:
    """Pods, Secrets and NetworkPolicies of a runtime still in the API server."""
    prefix = names.object_name(runtime_id)
    return cluster.call(
        lambda: [name for (_, _, name) in cluster.api.objects if name.startswith(prefix)]
    )


async def _cold_sandbox(api: httpx.AsyncClient) -> str:
    created = await api.post("/sandboxes", json={"useWarmPool": False})
    assert created.status_code == 201, created.text
    sandbox_id: str = created.json()["id"]
    return sandbox_id


async def test_an_evicted_pod_fails_its_sandbox_with_the_reason_and_an_event(
    stack: Stack, api: httpx.AsyncClient, cluster: FakeCluster
) -> None:
    sandbox_id = await _cold_sandbox(api)
    assert _objects_of(cluster, sandbox_id)
    kubelet = cluster.kubelet
    assert kubelet is not None
    cluster.call(lambda: kubelet.evict(names.object_name(sandbox_id)))

    ended = await _ended(api, sandbox_id)
    assert ended["status"] == "failed"
    assert "Evicted" in ended["statusReason"]
    assert "low on memory" in ended["statusReason"]
    assert (await _events(stack, sandbox_id))[-1] == "failed"
    assert _objects_of(cluster, sandbox_id) == []  # the failed Pod and its objects are gone
    run = await api.post(f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": "1"})
    assert run.status_code == 409, run.text


async def test_a_crashed_agent_and_a_deleted_pod_fail_their_sandboxes(
    api: httpx.AsyncClient, cluster: FakeCluster
) -> None:
    crashed, deleted = await asyncio.gather(_cold_sandbox(api), _cold_sandbox(api))
    kubelet = cluster.kubelet
    assert kubelet is not None
    cluster.call(lambda: kubelet.crash(names.object_name(crashed)))
    cluster.call(lambda: cluster.api.delete("pods", NAMESPACE, names.object_name(deleted)))

    first, second = await asyncio.gather(_ended(api, crashed), _ended(api, deleted))
    assert (first["status"], second["status"]) == ("failed", "failed")
    assert "exit code" in first["statusReason"]
    # The Pod watch ("the pod disappeared") or a reconcile pass that ran first ("the
    # runtime disappeared"): either way the reason names the disappearance.
    assert second["statusReason"] in ("the pod disappeared", "the runtime disappeared")


async def test_a_claimed_warm_sandbox_fails_when_its_pod_does(
    stack: Stack, api: httpx.AsyncClient, cluster: FakeCluster
) -> None:
    name = f"fail-{secrets.token_hex(3)}"
    resources = {"memory": "311Mi"}
    spec = {"name": name, "minSize": 1, "maxSize": 1, "resources": resources}
    assert (await api.post("/warmpools", json=spec)).status_code == 201
    async with asyncio.timeout(60):
        while True:
            if (await api.get(f"/warmpools/{name}/status")).json()["availablePods"] >= 1:
                break
            await asyncio.sleep(0.2)
    pods = cluster.call(lambda: cluster.api.of_kind("pods"))
    assert any(p["metadata"]["labels"][names.POOL] == name for p in pods)  # labelled by pool

    sandbox = (await api.post("/sandboxes", json={"resources": resources})).json()
    assert sandbox["fromWarmPool"] is True
    connection = await asyncpg.connect(stack.env["DATABASE_URL"])
    try:
        runtime_id = await connection.fetchval(
            "SELECT runtime_id FROM sandboxes WHERE id = $1", sandbox["id"]
        )
    finally:
        await connection.close()
    assert runtime_id != sandbox["id"]
    kubelet = cluster.kubelet
    assert kubelet is not None
    cluster.call(lambda: kubelet.evict(names.object_name(runtime_id)))

    ended = await _ended(api, sandbox["id"])
    assert (ended["status"], ended["statusReason"].split(":")[0]) == ("failed", "Evicted")
    await api.delete(f"/warmpools/{name}")
