"""NATS, PostgreSQL and Redis restarted under running services: requests during an outage
fail fast with 503 (or keep working where the outage does not matter), the services
recover by themselves, and nothing durable is lost. docs/operations.md describes each."""

import asyncio
import secrets
from collections.abc import Awaitable

import asyncpg
import httpx
import nats
import pytest

from llmsafespace.contracts import subjects
from llmsafespace.devstack import Stack
from llmsafespace.servicekit.db import COMMAND_TIMEOUT, READY_TIMEOUT

from .probes import eventually, frozen

pytestmark = pytest.mark.stack

FAST = 10.0  # seconds: an answer during an outage comes well within this, never a hang


def pids(stack: Stack) -> dict[str, int]:
    return {
        name: service.process.pid
        for name, service in stack.services.items()
        if service.process is not None
    }


async def all_ready(stack: Stack) -> bool:
    async with httpx.AsyncClient(timeout=2) as client:
        for service in stack.services.values():
            try:
                response = await client.get(f"http://127.0.0.1:{service.port}/ready")
            except httpx.TransportError:
                return False
            if response.status_code != 200:
                return False
    return True


async def run(api: httpx.AsyncClient, sandbox_id: str, code: str) -> httpx.Response:
    body = {"type": "code", "content": code}
    return await api.post(f"/sandboxes/{sandbox_id}/execute", json=body, timeout=FAST + 20)


async def stored_events(stack: Stack, sandbox_id: str) -> set[str]:
    """The lifecycle events of a sandbox the JetStream events stream holds."""
    connection = await nats.connect(**stack.nats_options("audit-svc"))
    try:
        js = connection.jetstream()
        found = set()
        for event in ("created", "running", "terminated"):
            subject = subjects.sandbox_event(sandbox_id, event)
            try:
                await js.get_last_msg(subjects.EVENTS_STREAM, subject)
            except nats.js.errors.NotFoundError:
                continue
            found.add(event)
        return found
    finally:
        await connection.close()


async def test_a_nats_restart_gives_503_meanwhile_then_services_reconnect_and_lose_nothing(
    stack: Stack, api: httpx.AsyncClient, database: asyncpg.Connection
) -> None:
    before = pids(stack)
    created = await api.post("/sandboxes", json={"timeout": 300})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    assert (await run(api, sandbox_id, "x = 41")).status_code == 200

    async with stack.server_stopped("nats"):
        loop = asyncio.get_running_loop()
        asked = loop.time()
        down = await api.post(
            f"/sandboxes/{sandbox_id}/execute",
            json={"type": "code", "content": "print(x)"},
            timeout=FAST,
        )
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "service_unavailable"
        assert loop.time() - asked < FAST
        assert (await api.post("/sandboxes", json={}, timeout=FAST)).status_code == 503

    await eventually(lambda: all_ready(stack))
    after = await run(api, sandbox_id, "print(x + 1)")
    assert (after.status_code, after.json()["stdout"]) == (200, "42\n"), after.text
    assert (await api.delete(f"/sandboxes/{sandbox_id}")).status_code == 200
    assert pids(stack) == before, "the services recovered without a restart"

    # Events from before, during and after the restart are all in the stream, and all of
    # them reach the audit trail.
    assert await stored_events(stack, sandbox_id) == {"created", "running", "terminated"}

    async def audited() -> bool:
        rows = await database.fetch(
            "SELECT kind, event FROM audit_events WHERE sandbox_id = $1", sandbox_id
        )
        seen = {(row["kind"], row["event"]) for row in rows}
        wanted = {("sandbox", "created"), ("sandbox", "running"), ("sandbox", "terminated")}
        executions = [row for row in rows if row["kind"] == "exec" and row["event"] == "completed"]
        return wanted <= seen and len(executions) >= 2

    await eventually(audited)


async def test_a_postgres_restart_gives_503_meanwhile_then_services_recover_by_themselves(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    before = pids(stack)
    created = await api.post("/sandboxes", json={"timeout": 300})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]

    async with stack.server_stopped("postgres"):
        listed = await api.get("/sandboxes", timeout=FAST)
        assert listed.status_code == 503, listed.text
        assert listed.json()["error"]["code"] == "service_unavailable"
        made = await api.post("/sandboxes", json={}, timeout=FAST)
        assert made.status_code == 503, made.text

    async def lists() -> bool:
        return (await api.get("/sandboxes", timeout=FAST)).status_code == 200

    await eventually(lists)
    await eventually(lambda: all_ready(stack))
    after = await run(api, sandbox_id, "print('still here')")
    assert (after.status_code, after.json()["stdout"]) == (200, "still here\n"), after.text
    again = await api.post("/sandboxes", json={})
    assert again.status_code == 201, again.text
    for identifier in (sandbox_id, again.json()["id"]):
        assert (await api.delete(f"/sandboxes/{identifier}")).status_code == 200
    assert pids(stack) == before, "the services recovered without a restart"


async def test_a_frozen_postgres_gives_503_within_seconds_and_ready_says_so_at_once(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """PostgreSQL stopped in its tracks (SIGSTOP: connections stay open, nothing answers)
    is an outage like a stopped one: every wait on it is bounded (docs/operations.md)."""
    before = pids(stack)
    postgres = stack.servers.postgres.process
    assert postgres is not None
    gateway = f"http://127.0.0.1:{stack.services['api-gateway'].port}"
    loop = asyncio.get_running_loop()

    async def timed(call: Awaitable[httpx.Response]) -> tuple[httpx.Response, float]:
        asked = loop.time()
        response = await call
        return response, loop.time() - asked

    with frozen(postgres.pid):
        answers = await asyncio.gather(
            timed(api.get("/user", timeout=FAST + 20)),
            timed(api.get("/user/apikeys", timeout=FAST + 20)),
            timed(api.post("/sandboxes", json={}, timeout=FAST + 20)),
            timed(api.get("/sandboxes", timeout=FAST + 20)),
        )
        async with httpx.AsyncClient(timeout=FAST) as plain:
            ready, took = await timed(plain.get(f"{gateway}/ready"))
    assert (ready.status_code, ready.json()["checks"]["database"]) == (503, False)
    assert took < READY_TIMEOUT + 2, took
    for response, took in answers:
        assert response.status_code == 503, (response.request.url, response.text)
        assert response.json()["error"] == {
            "code": "service_unavailable",
            "message": "database unavailable",
        }
        # The statement's bound, then its cancel's (see servicekit/db.py).
        assert took < 2 * COMMAND_TIMEOUT + 2, (response.request.url, took)

    await eventually(lambda: all_ready(stack))
    assert (await api.get("/user")).status_code == 200
    created = await api.post("/sandboxes", json={})
    assert created.status_code == 201, created.text
    assert (await api.delete(f"/sandboxes/{created.json()['id']}")).status_code == 200
    assert pids(stack) == before, "the services recovered without a restart"


def remaining(response: httpx.Response) -> int:
    return int(response.headers["X-RateLimit-Remaining"])


async def test_without_redis_the_api_keeps_working_without_rate_limits_then_limits_return(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    before = pids(stack)
    made = await api.post("/users", json={"username": f"redis-{secrets.token_hex(4)}"})
    headers = {"Authorization": f"Bearer {made.json()['apiKey']}"}  # admins are not limited
    user = httpx.AsyncClient(base_url=api.base_url, headers=headers, timeout=FAST)
    async with stack.server_stopped("redis"):
        listed = await user.get("/sandboxes")
        assert listed.status_code == 200, listed.text
        again = await user.get("/sandboxes")
        # Not counted while Redis is down (fail open): the whole limit stays available.
        assert remaining(listed) == remaining(again) == int(again.headers["X-RateLimit-Limit"])
        created = await api.post("/sandboxes", json={}, timeout=FAST + 20)
        assert created.status_code == 201, created.text
        ran = await run(api, created.json()["id"], "print('no cache needed')")
        assert (ran.status_code, ran.json()["stdout"]) == (200, "no cache needed\n")
        assert (await api.delete(f"/sandboxes/{created.json()['id']}")).status_code == 200

    async def counted_again() -> bool:
        first = await user.get("/sandboxes")
        second = await user.get("/sandboxes")
        return remaining(second) < remaining(first)

    await eventually(counted_again)
    await user.aclose()
    await eventually(lambda: all_ready(stack))
    assert pids(stack) == before, "the services recovered without a restart"
