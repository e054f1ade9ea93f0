"""The sandbox lifecycle through the public API: the full create, list, status, timeout,
expiry, the runtime catalog, and the events every state change leaves."""

import asyncio
import json
import secrets

import httpx
import nats
import pytest

from llmsafespace.contracts import subjects
from llmsafespace.devstack import Stack

pytestmark = pytest.mark.stack

# The runtimes the README's table documents, which the built-in catalog offers.
DOCUMENTED_RUNTIMES = ["node:20", "python:3.11", "python:3.11-data"]


async def _events(stack: Stack, sandbox_id: str, wanted: set[str], within: float) -> list[str]:
    """The event names of one sandbox found in JetStream (from the start of the stream)."""
    connection = await nats.connect(**stack.nats_options("audit-svc"))
    seen: list[str] = []
    try:
        js = connection.jetstream()
        subscription = await js.subscribe(
            subjects.sandbox_event(sandbox_id, "*"), ordered_consumer=True
        )
        async with asyncio.timeout(within):
            while not wanted <= set(seen):
                message = await subscription.next_msg(timeout=within)
                seen.append(message.subject.rsplit(".", 1)[-1])
                json.loads(message.data)
        await subscription.unsubscribe()
    finally:
        await connection.close()
    return seen


async def test_a_create_returns_the_full_sandbox_and_an_unknown_runtime_is_refused(
    api: httpx.AsyncClient,
) -> None:
    created = await api.post(
        "/sandboxes",
        json={
            "runtime": "python:3.11",
            "securityLevel": "standard",
            "timeout": 120,
            "resources": {"cpu": 0.5, "memory": "256Mi"},
            "useWarmPool": False,
            "metadata": {"team": "lifecycle"},
            "env": {"GREETING": "hi"},
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "running"
    assert (body["runtime"], body["securityLevel"], body["timeout"]) == (
        "python:3.11",
        "standard",
        120,
    )
    assert body["resources"]["memory"] == "256Mi"
    assert body["metadata"] == {"team": "lifecycle"}
    assert body["fromWarmPool"] is False
    assert set(body["endpoints"]) == {"execute", "files", "websocket"}
    assert body["createdAt"] < body["expiresAt"]
    run = await api.post(
        f"/sandboxes/{body['id']}/execute",
        json={"type": "command", "content": "echo $GREETING"},
    )
    assert run.json()["stdout"] == "hi\n"
    await api.delete(f"/sandboxes/{body['id']}")

    unknown = await api.post("/sandboxes", json={"runtime": "cobol:85"})
    assert unknown.status_code == 400, unknown.text
    assert "python:3.11" in unknown.json()["error"]["message"]
    assert unknown.json()["error"]["details"]["available"] == DOCUMENTED_RUNTIMES


async def test_list_pages_filters_and_shows_users_only_their_own(
    api: httpx.AsyncClient, second_user_api: httpx.AsyncClient
) -> None:
    tag = secrets.token_hex(4)
    mine = [
        (await api.post("/sandboxes", json={"metadata": {"run": tag, "n": str(n)}})).json()["id"]
        for n in range(3)
    ]
    theirs = (await second_user_api.post("/sandboxes", json={"metadata": {"run": tag}})).json()

    page = await api.get("/sandboxes", params={"metadata.run": tag, "limit": 2})
    assert page.status_code == 200, page.text
    assert page.json()["pagination"] == {"limit": 2, "offset": 0, "total": 4}  # admin: all
    assert len(page.json()["sandboxes"]) == 2
    rest = await api.get("/sandboxes", params={"metadata.run": tag, "limit": 2, "offset": 2})
    ids = {s["id"] for s in page.json()["sandboxes"] + rest.json()["sandboxes"]}
    assert ids == {*mine, theirs["id"]}

    one = await api.get("/sandboxes", params={"metadata.run": tag, "metadata.n": "1"})
    assert [s["id"] for s in one.json()["sandboxes"]] == [mine[1]]

    own = await second_user_api.get("/sandboxes", params={"metadata.run": tag})
    assert [s["id"] for s in own.json()["sandboxes"]] == [theirs["id"]]
    assert (await second_user_api.get(f"/sandboxes/{mine[0]}/status")).status_code == 404

    await api.delete(f"/sandboxes/{mine[0]}")
    running = await api.get("/sandboxes", params={"metadata.run": tag, "status": "running"})
    assert running.json()["pagination"]["total"] == 3
    ended = await api.get("/sandboxes", params={"metadata.run": tag, "status": "terminated"})
    assert [s["id"] for s in ended.json()["sandboxes"]] == [mine[0]]

    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"status": "sleeping"}):
        refused = await api.get("/sandboxes", params=bad)
        assert refused.status_code == 400, (bad, refused.text)
    for sandbox_id in mine[1:]:
        await api.delete(f"/sandboxes/{sandbox_id}")
    await second_user_api.delete(f"/sandboxes/{theirs['id']}")


async def test_status_reports_uptime_and_the_runtime_and_timeout_moves_expiry(
    api: httpx.AsyncClient,
) -> None:
    sandbox = (await api.post("/sandboxes", json={"timeout": 60})).json()
    status = await api.get(f"/sandboxes/{sandbox['id']}/status")
    assert status.status_code == 200, status.text
    report = status.json()
    assert (report["status"], report["runtimeAlive"]) == ("running", True)
    assert report["uptimeSeconds"] >= 0

    extended = await api.post(f"/sandboxes/{sandbox['id']}/timeout", json={"timeout": 3600})
    assert extended.status_code == 200, extended.text
    assert extended.json()["expiresAt"] > sandbox["expiresAt"]
    for bad in ({"timeout": 0}, {"timeout": 86401}, {}):
        refused = await api.post(f"/sandboxes/{sandbox['id']}/timeout", json=bad)
        assert refused.status_code == 400, refused.text

    await api.delete(f"/sandboxes/{sandbox['id']}")
    after = (await api.get(f"/sandboxes/{sandbox['id']}/status")).json()
    assert (after["status"], after["runtimeAlive"]) == ("terminated", False)
    late = await api.post(f"/sandboxes/{sandbox['id']}/timeout", json={"timeout": 10})
    assert late.status_code == 409


HOG = """
import threading
held = b"x" * (100 * 2**20)  # written, so every page is resident

def spin():
    while True:
        pass

threading.Thread(target=spin, daemon=True).start()
"""


@pytest.mark.local_driver(
    "CPU time, memory and pids come from the local driver's cgroup; on Kubernetes only the"
    " metrics API's rate and memory, which the fake cluster does not serve"
)
async def test_status_reports_live_cpu_and_memory_from_the_runtime(api: httpx.AsyncClient) -> None:
    body = {"resources": {"cpu": 0.2, "memory": "256Mi"}, "useWarmPool": False}
    sandbox = (await api.post("/sandboxes", json=body)).json()
    url = f"/sandboxes/{sandbox['id']}/status"
    idle = (await api.get(url)).json()
    assert idle["memoryLimitBytes"] == 256 * 2**20, idle
    assert idle["memoryBytes"] < 100 * 2**20, idle
    assert idle["pids"] >= 1, idle

    run = await api.post(
        f"/sandboxes/{sandbox['id']}/execute", json={"type": "code", "content": HOG}
    )
    assert run.json()["status"] == "completed", run.text
    busy = (await api.get(url)).json()
    assert busy["memoryBytes"] >= 100 * 2**20, busy
    assert busy["pids"] > idle["pids"], (idle, busy)  # the spinning thread
    later = busy
    async with asyncio.timeout(60):  # the spinning thread keeps using CPU
        while later["cpuMs"] <= busy["cpuMs"]:
            await asyncio.sleep(0.2)
            later = (await api.get(url)).json()
    assert later["cpuMs"] > idle["cpuMs"]

    await api.delete(f"/sandboxes/{sandbox['id']}")
    ended = (await api.get(url)).json()
    assert ended["status"] == "terminated"
    assert not {"cpuMs", "memoryBytes", "memoryLimitBytes", "pids"} & set(ended), ended


async def test_a_two_second_sandbox_expires_with_its_event(
    stack: Stack, api: httpx.AsyncClient, sandbox_processes
) -> None:
    sandbox = (await api.post("/sandboxes", json={"timeout": 2, "useWarmPool": False})).json()
    events = await _events(stack, sandbox["id"], {"created", "running", "expired"}, within=30)
    assert events[:2] == ["created", "running"]
    assert "expired" in events
    gone = (await api.get(f"/sandboxes/{sandbox['id']}")).json()
    assert (gone["status"], gone["statusReason"]) == ("terminated", "expired")
    assert sandbox_processes(sandbox["id"]) == []


async def test_terminate_emits_its_event(stack: Stack, api: httpx.AsyncClient) -> None:
    sandbox = (await api.post("/sandboxes", json={})).json()
    await api.delete(f"/sandboxes/{sandbox['id']}")
    events = await _events(stack, sandbox["id"], {"created", "running", "terminated"}, 10)
    assert events == ["created", "running", "terminated"]


async def test_runtimes_and_profiles_are_listed_and_fetched(api: httpx.AsyncClient) -> None:
    runtimes = (await api.get("/runtimes")).json()["runtimes"]
    assert sorted(r["id"] for r in runtimes) == DOCUMENTED_RUNTIMES
    assert all("interpreter" not in runtime for runtime in runtimes)
    one = await api.get("/runtimes/python:3.11")
    assert (one.status_code, one.json()["language"]) == (200, "python")
    assert (await api.get("/runtimes/ruby:3")).status_code == 404

    profiles = {p["id"]: p for p in (await api.get("/profiles")).json()["profiles"]}
    assert {"default", "small", "large"} <= set(profiles)
    small = (await api.get("/profiles/small")).json()
    assert small["resources"]["memory"] == "256Mi"
    assert (await api.get("/profiles/huge")).status_code == 404
