"""Pause and resume through the real stack: a frozen cgroup, 409 `sandbox_paused`,
auto-resume, and the reaper ending a sandbox paused past its `pausedTimeout`; on
Kubernetes, pause by snapshot (the Pod goes, the files come back, the memory does not)."""

import asyncio
import json
import secrets
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import websockets

from llmsafespace.devstack import Stack
from llmsafespace.runtime import Driver
from llmsafespace.runtime.kubernetes import names
from llmsafespace.sdk import AsyncSandbox, SandboxPausedError

from ..kubernetes.cluster import FakeCluster
from ..kubernetes.object_store import ObjectStore
from .test_audit import audit
from .test_audit import names as event_names

pytestmark = pytest.mark.stack
FREEZES = pytest.mark.local_driver(reason="the cgroup freezer; Kubernetes pauses by snapshot")

WAIT_SECONDS = 30.0
BUSY_LOOP = "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', 'while True: pass'])"


@pytest.fixture
async def quota_user(stack, api: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh plain user (quotas apply to them; admins are exempt)."""
    created = await api.post("/users", json={"username": f"pause-{secrets.token_hex(4)}"})
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['apiKey']}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as client:
        yield client


async def _create(api: httpx.AsyncClient, **body: object) -> str:
    created = await api.post("/sandboxes", json={"timeout": 600, **body})
    assert created.status_code == 201, created.text
    sandbox_id: str = created.json()["id"]
    return sandbox_id


async def _run(api: httpx.AsyncClient, sandbox_id: str, code: str) -> httpx.Response:
    return await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": code}
    )


async def _cpu_ms(api: httpx.AsyncClient, sandbox_id: str) -> float:
    report = await api.get(f"/sandboxes/{sandbox_id}/status")
    assert report.status_code == 200, report.text
    cpu_ms: float = report.json()["cpuMs"]
    return cpu_ms


async def _cpu_grows(api: httpx.AsyncClient, sandbox_id: str) -> None:
    start = await _cpu_ms(api, sandbox_id)
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while await _cpu_ms(api, sandbox_id) <= start:
        assert asyncio.get_running_loop().time() < deadline, "CPU time did not grow"
        await asyncio.sleep(0.1)


@FREEZES
async def test_a_socket_opened_before_a_pause_has_its_next_execution_refused(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """The refusal comes back from exec-svc to the socket (the gateway does not wait for
    an acceptance), naming the execution."""
    sandbox_id = await _create(api)
    url = stack.api_url.replace("http://", "ws://") + f"/sandboxes/{sandbox_id}/stream"
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        assert (await api.post(f"/sandboxes/{sandbox_id}/pause")).status_code == 200
        assert (await _run(api, sandbox_id, "1")).status_code == 409  # exec-svc knows
        execute = {"type": "execute", "executionId": "exec-paused", "mode": "code", "content": "1"}
        await ws.send(json.dumps(execute))
        refused = json.loads(await asyncio.wait_for(ws.recv(), WAIT_SECONDS))
    assert (refused["type"], refused["code"], refused["executionId"]) == (
        "error",
        "sandbox_paused",
        "exec-paused",
    )
    await api.delete(f"/sandboxes/{sandbox_id}")


@FREEZES
async def test_an_execution_running_through_a_pause_goes_on_after_the_resume(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """Frozen with its sandbox, a streamed command picks up where it stopped: every line
    arrives and it completes, nothing cut off at the pause."""
    sandbox_id = await _create(api)
    url = stack.api_url.replace("http://", "ws://") + f"/sandboxes/{sandbox_id}/stream"
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    script = "for i in 1 2 3 4 5 6; do echo $i; sleep 0.2; done"
    execute = {
        "type": "execute",
        "executionId": "exec-through",
        "mode": "command",
        "content": script,
    }
    lines: list[str] = []
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(json.dumps(execute))
        while not lines:  # running: its first line is out
            message = json.loads(await asyncio.wait_for(ws.recv(), WAIT_SECONDS))
            if message["type"] == "output":
                lines += message["content"].split()
        assert (await api.post(f"/sandboxes/{sandbox_id}/pause")).status_code == 200
        assert (await api.post(f"/sandboxes/{sandbox_id}/resume")).status_code == 200
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), WAIT_SECONDS))
            if message["type"] == "output":
                lines += message["content"].split()
            elif message["type"] != "execution_start":
                break
    assert (message["type"], message["status"], message["exitCode"]) == (
        "execution_complete",
        "completed",
        0,
    ), message
    assert lines == ["1", "2", "3", "4", "5", "6"]
    await api.delete(f"/sandboxes/{sandbox_id}")


@FREEZES
async def test_a_paused_sandbox_stops_using_cpu_refuses_calls_and_resumes_intact(
    api: httpx.AsyncClient, second_user_api: httpx.AsyncClient
) -> None:
    sandbox_id = await _create(api)
    assert (await _run(api, sandbox_id, "kept = 41")).status_code == 200
    assert (await _run(api, sandbox_id, BUSY_LOOP)).status_code == 200
    await _cpu_grows(api, sandbox_id)
    before = (await api.get(f"/sandboxes/{sandbox_id}")).json()

    assert (await second_user_api.post(f"/sandboxes/{sandbox_id}/pause")).status_code == 404
    paused = await api.post(f"/sandboxes/{sandbox_id}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert paused.json()["pausedAt"]
    frozen = await _cpu_ms(api, sandbox_id)
    await asyncio.sleep(1.0)  # the busy loop would use about 1000 ms of CPU in this second
    assert await _cpu_ms(api, sandbox_id) == frozen

    refused = await _run(api, sandbox_id, "kept")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "sandbox_paused"
    listing = await api.get(f"/sandboxes/{sandbox_id}/files", params={"path": "/workspace"})
    assert listing.status_code == 409, listing.text
    assert listing.json()["error"]["code"] == "sandbox_paused"
    extended = await api.post(f"/sandboxes/{sandbox_id}/timeout", json={"timeout": 900})
    assert extended.status_code == 409, extended.text
    assert extended.json()["error"]["code"] == "sandbox_paused"  # as every other call says

    resumed = await api.post(f"/sandboxes/{sandbox_id}/resume")
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["status"], resumed.json().get("pausedAt")) == ("running", None)
    assert resumed.json()["memoryKept"] is True
    assert resumed.json()["expiresAt"] > before["expiresAt"]  # the clock stopped meanwhile
    await _cpu_grows(api, sandbox_id)
    result = await _run(api, sandbox_id, "kept + 1")
    assert result.status_code == 200, result.text
    assert result.json()["result"] == "42"
    await api.delete(f"/sandboxes/{sandbox_id}")


@FREEZES
async def test_a_call_on_an_auto_resume_sandbox_resumes_it(api: httpx.AsyncClient) -> None:
    sandbox_id = await _create(api, autoResume=True)
    assert (await _run(api, sandbox_id, "kept = 'still here'")).status_code == 200
    paused = await api.post(f"/sandboxes/{sandbox_id}/pause")
    assert paused.json()["status"] == "paused", paused.text
    result = await _run(api, sandbox_id, "kept")
    assert result.status_code == 200, result.text
    assert result.json()["result"] == "'still here'"
    assert (await api.get(f"/sandboxes/{sandbox_id}")).json()["status"] == "running"
    await api.delete(f"/sandboxes/{sandbox_id}")


async def test_concurrent_pauses_resumes_and_auto_resumed_calls_all_succeed(
    api: httpx.AsyncClient,
) -> None:
    """One pause or resume of a sandbox at a time: the others wait, find it done and are
    answered as it is (they lost the row's race with a 409, and so did auto-resumed
    calls). On both drivers: no state is asked to outlive the pause (on Kubernetes a
    pause is by snapshot and the memory goes)."""
    sandbox_id = await _create(api, autoResume=True)

    async def all_at_once(action: str) -> list[httpx.Response]:
        calls = (api.post(f"/sandboxes/{sandbox_id}/{action}") for _ in range(3))
        return await asyncio.gather(*calls)

    for answered in await all_at_once("pause"):
        assert answered.json().get("status") == "paused", answered.text
    runs = await asyncio.gather(*(_run(api, sandbox_id, "41 + 1") for _ in range(6)))
    for run in runs:
        assert (run.status_code, run.json().get("result")) == (200, "42"), run.text
    assert (await api.post(f"/sandboxes/{sandbox_id}/pause")).status_code == 200
    for answered in await all_at_once("resume"):
        assert answered.json().get("status") == "running", answered.text
    await api.delete(f"/sandboxes/{sandbox_id}")


async def test_sockets_on_a_paused_sandbox_say_so_or_resume_it(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    base = stack.api_url.replace("http://", "ws://")
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    plain = await _create(api)
    assert (await api.post(f"/sandboxes/{plain}/pause")).json()["status"] == "paused"
    for endpoint in ("stream", "terminal"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(
                f"{base}/sandboxes/{plain}/{endpoint}", additional_headers=headers
            )
        assert refused.value.response.status_code == 409
        assert json.loads(refused.value.response.body)["error"]["code"] == "sandbox_paused"
    credentials = {"api_url": stack.api_url, "api_key": stack.admin_key}
    async with await AsyncSandbox.connect(plain, **credentials) as paused:  # ends it
        with pytest.raises(SandboxPausedError):  # what the README's `except` catches
            await paused.stream_code("1").wait()

    resuming = await _create(api, autoResume=True)
    assert (await api.post(f"/sandboxes/{resuming}/pause")).json()["status"] == "paused"
    async with await AsyncSandbox.connect(resuming, **credentials) as sandbox:  # ends it
        assert (await sandbox.stream_code("6 * 7").wait()).result == "42"
        assert (await api.get(f"/sandboxes/{resuming}")).json()["status"] == "running"


async def test_a_sandbox_paused_past_its_paused_timeout_is_terminated_and_audited(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    sandbox_id = await _create(api, pausedTimeout=1)
    paused = await api.post(f"/sandboxes/{sandbox_id}/pause")
    assert paused.json()["status"] == "paused", paused.text
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while (sandbox := (await api.get(f"/sandboxes/{sandbox_id}")).json())["status"] == "paused":
        assert asyncio.get_running_loop().time() < deadline, sandbox
        await asyncio.sleep(0.2)
    assert sandbox["status"] == "terminated"
    assert sandbox["statusReason"] == "paused longer than pausedTimeout"
    assert await _kept_for_pause(stack, sandbox_id) == 0  # (Kubernetes: its snapshot went)
    expected = {("sandbox", "paused"), ("sandbox", "expired")}
    events = await audit(api, lambda found: event_names(found) >= expected, sandboxId=sandbox_id)
    assert event_names(events) >= expected, events


async def test_paused_sandboxes_count_against_the_paused_quota_not_the_running_one(
    quota_user: httpx.AsyncClient,
) -> None:
    """The stack's quotas: 3 running sandboxes, 1 paused (tests/conftest.py)."""
    first, second, third = [await _create(quota_user) for _ in range(3)]
    paused = await quota_user.post(f"/sandboxes/{first}/pause")
    assert paused.status_code == 200, paused.text
    fourth = await _create(quota_user)  # `first` no longer counts as running
    refused = await quota_user.post(f"/sandboxes/{second}/pause")
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["details"]["resource"] == "pausedSandboxes"
    full = await quota_user.post(f"/sandboxes/{first}/resume")  # 3 running already
    assert full.status_code == 429, full.text
    assert full.json()["error"]["details"]["resource"] == "sandboxes"
    assert (await quota_user.delete(f"/sandboxes/{fourth}")).status_code == 200
    resumed = await quota_user.post(f"/sandboxes/{first}/resume")
    assert resumed.json()["status"] == "running", resumed.text
    for sandbox_id in (first, second, third):
        await quota_user.delete(f"/sandboxes/{sandbox_id}")


def _pods_of(cluster: FakeCluster, runtime_id: str) -> list[str]:
    """The runtime's Pods still in the fake API server."""
    name = names.object_name(runtime_id)
    return cluster.call(
        lambda: [key[2] for key in cluster.api.objects if key[0] == "pods" and key[2] == name]
    )


async def _listed_snapshots(api: httpx.AsyncClient, sandbox_id: str) -> list[dict]:
    listing = await api.get("/snapshots", params={"limit": 100})
    assert listing.status_code == 200, listing.text
    return [found for found in listing.json()["snapshots"] if found["sandboxId"] == sandbox_id]


async def _fetch(stack: Stack, query: str, sandbox_id: str) -> object:
    connection = await asyncpg.connect(stack.env["DATABASE_URL"])
    try:
        return await connection.fetchval(query, sandbox_id)
    finally:
        await connection.close()


async def _kept_for_pause(stack: Stack, sandbox_id: str) -> object:
    """The sandbox's internal snapshots (a pause by snapshot keeps one) in the database."""
    query = "SELECT count(*) FROM snapshots WHERE sandbox_id = $1 AND internal"
    return await _fetch(stack, query, sandbox_id)


@pytest.mark.kubernetes_driver
async def test_the_kubernetes_driver_pauses_by_snapshot_keeping_files_but_not_memory(
    stack: Stack, api: httpx.AsyncClient, cluster: FakeCluster, runtime_driver: Driver
) -> None:
    sandbox_id = await _create(api, useWarmPool=False)
    written = "open('/workspace/kept.txt', 'w').write('before the pause')\nkept = 41"
    assert (await _run(api, sandbox_id, written)).status_code == 200
    assert _pods_of(cluster, sandbox_id)

    paused = await api.post(f"/sandboxes/{sandbox_id}/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused"
    assert _pods_of(cluster, sandbox_id) == []
    assert await runtime_driver.inspect(sandbox_id) is None
    assert await _kept_for_pause(stack, sandbox_id) == 1
    assert await _listed_snapshots(api, sandbox_id) == []  # the pause's own: not listed
    refused = await _run(api, sandbox_id, "kept")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "sandbox_paused"

    resumed = await api.post(f"/sandboxes/{sandbox_id}/resume")
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["status"], resumed.json()["memoryKept"]) == ("running", False)
    assert _pods_of(cluster, sandbox_id)
    files = await _run(api, sandbox_id, "open('/workspace/kept.txt').read()")
    assert files.json()["result"] == "'before the pause'", files.text
    memory = (await _run(api, sandbox_id, "kept")).json()
    assert memory["error"]["name"] == "NameError", memory
    assert await _kept_for_pause(stack, sandbox_id) == 0  # dropped once resumed
    await api.delete(f"/sandboxes/{sandbox_id}")


@pytest.mark.kubernetes_driver
async def test_a_resume_whose_chunk_store_fails_stays_paused_and_answers_503(
    stack: Stack, api: httpx.AsyncClient, cluster: FakeCluster, object_store: ObjectStore
) -> None:
    sandbox_id = await _create(api, useWarmPool=False)
    written = "open('/workspace/kept.txt', 'w').write('before the pause')"
    assert (await _run(api, sandbox_id, written)).status_code == 200
    paused = await api.post(f"/sandboxes/{sandbox_id}/pause")
    assert paused.status_code == 200, paused.text
    query = (
        "SELECT s.chunks FROM snapshots s JOIN sandboxes x ON s.id = x.pause_snapshot"
        " WHERE x.id = $1"
    )
    chunks = await _fetch(stack, query, sandbox_id)
    assert isinstance(chunks, list)
    assert chunks
    object_store.lose(chunks)  # reading the workspace back is now an S3 error

    resumed = await api.post(f"/sandboxes/{sandbox_id}/resume")
    assert resumed.status_code == 503, resumed.text
    assert resumed.json()["error"]["code"] == "runtime_unavailable"
    assert (await api.get(f"/sandboxes/{sandbox_id}")).json()["status"] == "paused"
    assert await _kept_for_pause(stack, sandbox_id) == 1  # kept for a later resume
    assert _pods_of(cluster, sandbox_id) == []  # the new Pod went again
    refused = await _run(api, sandbox_id, "1")
    assert refused.json()["error"]["code"] == "sandbox_paused", refused.text
    assert (await api.delete(f"/sandboxes/{sandbox_id}")).status_code == 200
    assert await _kept_for_pause(stack, sandbox_id) == 0


@pytest.mark.kubernetes_driver
async def test_a_call_on_an_auto_resume_sandbox_restores_it_on_kubernetes(
    api: httpx.AsyncClient, cluster: FakeCluster
) -> None:
    sandbox_id = await _create(api, autoResume=True, useWarmPool=False)
    written = "open('/workspace/kept.txt', 'w').write('still here')"
    assert (await _run(api, sandbox_id, written)).status_code == 200
    paused = await api.post(f"/sandboxes/{sandbox_id}/pause")
    assert paused.json()["status"] == "paused", paused.text
    assert _pods_of(cluster, sandbox_id) == []
    result = await _run(api, sandbox_id, "open('/workspace/kept.txt').read()")
    assert result.status_code == 200, result.text
    assert result.json()["result"] == "'still here'"
    assert (await api.get(f"/sandboxes/{sandbox_id}")).json()["status"] == "running"
    await api.delete(f"/sandboxes/{sandbox_id}")


@pytest.mark.kubernetes_driver
async def test_a_claimed_warm_sandbox_resumes_on_a_pod_of_its_own(
    stack: Stack, api: httpx.AsyncClient, cluster: FakeCluster
) -> None:
    name = f"pause-{secrets.token_hex(3)}"
    resources = {"memory": "313Mi"}
    spec = {"name": name, "minSize": 1, "maxSize": 1, "resources": resources}
    assert (await api.post("/warmpools", json=spec)).status_code == 201
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while (await api.get(f"/warmpools/{name}/status")).json()["availablePods"] < 1:
        assert asyncio.get_running_loop().time() < deadline, "the pool did not fill"
        await asyncio.sleep(0.2)
    created = (await api.post("/sandboxes", json={"resources": resources})).json()
    sandbox_id = created["id"]
    assert created["fromWarmPool"] is True, created
    runtime_id = await _fetch(stack, "SELECT runtime_id FROM sandboxes WHERE id = $1", sandbox_id)
    assert isinstance(runtime_id, str)
    assert runtime_id != sandbox_id
    written = "open('/workspace/kept.txt', 'w').write('warm')"
    assert (await _run(api, sandbox_id, written)).status_code == 200

    paused = await api.post(f"/sandboxes/{sandbox_id}/pause")
    assert paused.json()["status"] == "paused", paused.text
    assert _pods_of(cluster, runtime_id) == []
    resumed = await api.post(f"/sandboxes/{sandbox_id}/resume")
    assert (resumed.json()["status"], resumed.json()["memoryKept"]) == ("running", False)
    assert _pods_of(cluster, sandbox_id)
    result = await _run(api, sandbox_id, "open('/workspace/kept.txt').read()")
    assert result.json()["result"] == "'warm'", result.text
    await api.delete(f"/warmpools/{name}")
    await api.delete(f"/sandboxes/{sandbox_id}")
