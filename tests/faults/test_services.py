"""Services stopped, killed and asked to stop: callers are told quickly, in-flight work
finishes, sandboxes outlive the services, and a crash leaves nothing half-made behind.

(A streamed execution whose exec-svc is killed is in tests/e2e/test_streaming.py, beside
the streaming helpers it uses.)"""

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import websockets

from llmsafespace.devstack import Stack

from .probes import eventually, processes_naming, runtime_ids

pytestmark = pytest.mark.stack

# The other services' SIGTERM exits are checked below, with work in flight.
IDLE_SERVICES = ("warmpool-svc", "audit-svc")
RESTARTED_SERVICES = ("sandbox-svc", "exec-svc", "warmpool-svc", "api-gateway")
CREATES = 16  # concurrent creates, so that some are in flight when the fault lands (a cold
# create takes ~0.1 s: six were all done between two polls of `eventually`)


@pytest.fixture(scope="module")
async def sandbox_id(stack: Stack) -> AsyncIterator[str]:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
        created = await api.post("/sandboxes", json={"timeout": 900})
        assert created.status_code == 201, created.text
        identifier: str = created.json()["id"]
        yield identifier
        await api.delete(f"/sandboxes/{identifier}")


async def test_a_stopped_service_answers_503_quickly_and_recovers(
    stack: Stack, api: httpx.AsyncClient, sandbox_id: str
) -> None:
    body = {"type": "code", "content": "print('back')"}
    async with stack.stopped("exec-svc"):
        down = await api.post(f"/sandboxes/{sandbox_id}/execute", json=body, timeout=5)
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "service_unavailable"
    again = await api.post(f"/sandboxes/{sandbox_id}/execute", json=body)
    assert (again.status_code, again.json()["stdout"]) == (200, "back\n")

    async with stack.stopped("sandbox-svc"):
        down = await api.post("/sandboxes", json={}, timeout=5)
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "service_unavailable"


async def test_a_socket_is_told_at_once_when_no_exec_svc_runs(
    stack: Stack, sandbox_id: str
) -> None:
    """An execution over a socket is started without waiting for an acceptance; with no
    exec-svc the server's "no responders" still reaches the socket, in seconds (not the
    START_WAIT after which a silent execution is called lost)."""
    url = stack.api_url.replace("http://", "ws://") + f"/sandboxes/{sandbox_id}/stream"
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    execute = {"type": "execute", "executionId": "exec-nobody", "mode": "code", "content": "1"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        async with stack.stopped("exec-svc"):
            await ws.send(json.dumps(execute))
            refused = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert (refused["type"], refused["code"], refused["executionId"]) == (
            "error",
            "service_unavailable",
            "exec-nobody",
        )
        await ws.send(json.dumps({**execute, "executionId": "exec-back"}))
        while (answer := json.loads(await asyncio.wait_for(ws.recv(), 60)))["type"] not in (
            "execution_complete",
            "error",
        ):
            pass
        assert (answer["type"], answer["executionId"]) == ("execution_complete", "exec-back")


@pytest.mark.parametrize("service", RESTARTED_SERVICES)
async def test_a_sandbox_keeps_its_state_across_a_service_restart(
    stack: Stack, api: httpx.AsyncClient, service: str
) -> None:
    sandbox = (await api.post("/sandboxes", json={})).json()
    execute = f"/sandboxes/{sandbox['id']}/execute"
    kept = await api.post(execute, json={"type": "code", "content": "kept = 'yes'"})
    assert (kept.status_code, kept.json()["status"]) == (200, "completed"), kept.text

    await stack.restart(service)

    assert (await api.get(f"/sandboxes/{sandbox['id']}")).json()["status"] == "running"
    after = await api.post(execute, json={"type": "code", "content": "print(kept)"})
    assert after.json()["stdout"] == "yes\n", after.text
    await api.delete(f"/sandboxes/{sandbox['id']}")


async def test_a_killed_service_is_waited_for_until_it_is_back(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """The fault tests kill a service and then wait for it: the wait must outlast the
    supervisor's restart delay, not fail on the exit it was told to expect."""
    killed = stack.services["audit-svc"].process
    assert killed is not None
    stack.kill("audit-svc")
    await stack.wait_ready("audit-svc")
    assert stack.services["audit-svc"].process is not killed
    assert killed.returncode == -9
    assert (await api.get("/sandboxes")).status_code == 200


@pytest.mark.parametrize("service", IDLE_SERVICES)
async def test_sigterm_stops_a_service_with_exit_code_0_and_it_comes_back(
    stack: Stack, api: httpx.AsyncClient, service: str
) -> None:
    async with stack.stopped(service):
        assert stack.services[service].process is not None
        assert stack.services[service].process.returncode == 0
    assert (await api.get("/sandboxes")).status_code == 200


@pytest.mark.parametrize("service", ["exec-svc", "api-gateway"])
async def test_sigterm_lets_an_in_flight_execution_finish_before_exiting_0(
    stack: Stack, api: httpx.AsyncClient, sandbox_id: str, service: str
) -> None:
    marker = f"started-{service}"
    code = (
        f"import time\nopen('/workspace/{marker}', 'w').close()\ntime.sleep(2)\nprint('finished')"
    )
    body = {"type": "code", "content": code, "timeout": 60}
    in_flight = asyncio.create_task(api.post(f"/sandboxes/{sandbox_id}/execute", json=body))

    async def started() -> bool:
        found = await api.get(f"/sandboxes/{sandbox_id}/files/workspace/{marker}")
        return found.status_code == 200

    await eventually(started)
    async with stack.stopped(service):
        assert stack.services[service].process is not None
        assert stack.services[service].process.returncode == 0
        assert in_flight.done(), "the service exited before its in-flight request finished"
    response = await in_flight
    assert response.status_code == 200, response.text
    assert response.json()["stdout"] == "finished\n"


async def test_sigterm_lets_a_streamed_execution_send_its_terminal_message(
    stack: Stack, api: httpx.AsyncClient, sandbox_id: str
) -> None:
    """exec-svc publishes a streamed execution's output after its reply: at SIGTERM it
    finishes that work while its bus connection is still open, so the client following
    the stream gets the rest of the output and exactly one terminal message."""
    code = "import time\nopen('/workspace/streaming', 'w').close()\ntime.sleep(2)\nprint('end')"
    body = {"type": "code", "content": code, "timeout": 60, "stream": True}
    events: list[dict[str, object]] = []

    async def follow() -> None:
        async with api.stream("POST", f"/sandboxes/{sandbox_id}/execute", json=body) as sse:
            assert sse.status_code == 200
            async for line in sse.aiter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line.removeprefix("data: ")))

    following = asyncio.create_task(follow())

    async def started() -> bool:
        found = await api.get(f"/sandboxes/{sandbox_id}/files/workspace/streaming")
        return found.status_code == 200

    await eventually(started)
    async with stack.stopped("exec-svc"):
        assert stack.services["exec-svc"].process is not None
        assert stack.services["exec-svc"].process.returncode == 0
    await asyncio.wait_for(following, 60)
    terminal = [event for event in events if event["type"] == "execution_complete"]
    assert len(terminal) == 1, events
    assert terminal[0]["status"] == "completed"
    output = "".join(str(e["content"]) for e in events if e["type"] == "output")
    assert output == "end\n"


async def test_sigterm_lets_in_flight_creates_finish_before_sandbox_svc_exits_0(
    stack: Stack, api: httpx.AsyncClient, database: asyncpg.Connection
) -> None:
    before = {row["id"] for row in await database.fetch("SELECT id FROM sandboxes")}
    body = {"useWarmPool": False, "timeout": 120}
    creates = [asyncio.create_task(api.post("/sandboxes", json=body)) for _ in range(CREATES)]

    async def one_is_creating() -> bool:
        rows = await database.fetch("SELECT id FROM sandboxes WHERE status = 'creating'")
        return bool({row["id"] for row in rows} - before)

    await eventually(one_is_creating, within=30)
    async with stack.stopped("sandbox-svc"):
        assert stack.services["sandbox-svc"].process is not None
        assert stack.services["sandbox-svc"].process.returncode == 0
        rows = await database.fetch("SELECT id, status FROM sandboxes")
    responses = await asyncio.gather(*creates)

    # Taken before the stop: created. Arrived during it: 503 at once, never a timeout.
    statuses = sorted(response.status_code for response in responses)
    assert set(statuses) <= {201, 503}, [r.text for r in responses]
    started = {row["id"]: row["status"] for row in rows if row["id"] not in before}
    assert started
    assert set(started.values()) == {"running"}, started
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert created == set(started)
    for identifier in created:
        await api.delete(f"/sandboxes/{identifier}")


async def test_killing_sandbox_svc_during_creates_leaves_no_orphan_and_no_creating_row(
    stack: Stack, api: httpx.AsyncClient, database: asyncpg.Connection
) -> None:
    before = {row["id"] for row in await database.fetch("SELECT id FROM sandboxes")}
    body = {"useWarmPool": False, "timeout": 120}
    creates = [asyncio.create_task(api.post("/sandboxes", json=body)) for _ in range(CREATES)]

    async def one_is_creating() -> bool:
        rows = await database.fetch("SELECT id FROM sandboxes WHERE status = 'creating'")
        return bool({row["id"] for row in rows} - before)

    await eventually(one_is_creating, within=30)
    stack.kill("sandbox-svc")
    caught = {
        row["id"]
        for row in await database.fetch("SELECT id FROM sandboxes WHERE status = 'creating'")
    } - before
    responses = await asyncio.gather(*creates)  # 503 once sandbox-svc is silent (keepalive)
    await stack.wait_ready("sandbox-svc")

    async def settled() -> bool:
        rows = await database.fetch("SELECT id, status FROM sandboxes")
        return not any(row["status"] == "creating" for row in rows if row["id"] not in before)

    await eventually(settled)
    rows = {
        row["id"]: row["status"]
        for row in await database.fetch("SELECT id, status FROM sandboxes")
        if row["id"] not in before
    }
    assert caught
    assert {rows[identifier] for identifier in caught} <= {"running", "failed"}
    # No orphans: a failed sandbox has no runtime and no process; each running one has both.
    runtimes = runtime_ids(stack)
    for identifier, status in rows.items():
        if status == "failed":
            assert identifier not in runtimes, f"orphan runtime {identifier}"
            assert not processes_naming(identifier), f"orphan processes of {identifier}"
        else:
            assert status == "running", (identifier, status)
            assert identifier in runtimes, f"the runtime of running {identifier} is gone"
    # A client was told either way: a sandbox (running), or that its service stopped.
    for response in responses:
        assert response.status_code in (201, 503), response.text
        if response.status_code == 201:
            assert rows[response.json()["id"]] == "running"
    for identifier, status in rows.items():
        if status == "running":
            await api.delete(f"/sandboxes/{identifier}")
