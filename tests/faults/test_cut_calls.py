"""sandbox-svc calls cut half-way, and what brings their rows and runtimes back together
without anyone's help: a create whose cleanup met PostgreSQL frozen (its row `creating`
under a live sandbox-svc), and a pause or resume cut between its row's commit and the
freezer (sandbox-svc killed), whose row and freezer then disagree. docs/operations.md
("A service killed", "PostgreSQL down") describes each."""

import asyncio

import asyncpg
import httpx
import pytest

from llmsafespace.devstack import Stack

from .probes import eventually, frozen, frozen_runtime, processes_naming, runtime_ids

pytestmark = pytest.mark.stack
FREEZES = pytest.mark.local_driver(reason="the cgroup freezer; Kubernetes pauses by snapshot")

CREATES = 16  # concurrent cold creates, so that some are in flight when PostgreSQL stops
# A mismatch is repaired on the second reconcile pass that sees it (passes are 30 s apart,
# and the first may be up to 30 s away); a loaded 2-core machine stretches both.
REPAIRED_WITHIN = 150.0


def sandbox_svc_pid(stack: Stack) -> int:
    process = stack.services["sandbox-svc"].process
    assert process is not None
    return process.pid


async def created(api: httpx.AsyncClient) -> str:
    response = await api.post("/sandboxes", json={"useWarmPool": False, "timeout": 900})
    assert response.status_code == 201, response.text
    sandbox_id: str = response.json()["id"]
    return sandbox_id


async def statuses(database: asyncpg.Connection, before: set[str]) -> dict[str, str]:
    rows = await database.fetch("SELECT id, status FROM sandboxes")
    return {row["id"]: row["status"] for row in rows if row["id"] not in before}


async def events(database: asyncpg.Connection, sandbox_id: str) -> list[str]:
    rows = await database.fetch(
        "SELECT event FROM audit_events WHERE sandbox_id = $1 AND kind = 'sandbox' ORDER BY seq",
        sandbox_id,
    )
    return [row["event"] for row in rows]


async def test_creates_cut_by_a_frozen_postgres_end_failed_once_it_answers_without_a_restart(
    stack: Stack, api: httpx.AsyncClient, database: asyncpg.Connection
) -> None:
    """Each cut create answers 503 and could not record its end (PostgreSQL was still
    frozen); its row stays `creating` under a sandbox-svc that lives on. Once PostgreSQL
    answers again the row is failed and nothing of its runtime is left."""
    pid = sandbox_svc_pid(stack)
    before = {row["id"] for row in await database.fetch("SELECT id FROM sandboxes")}
    body = {"useWarmPool": False, "timeout": 900}
    creates = [
        asyncio.create_task(api.post("/sandboxes", json=body, timeout=120)) for _ in range(CREATES)
    ]

    async def one_is_creating() -> bool:
        return "creating" in (await statuses(database, before)).values()

    await eventually(one_is_creating, within=30)
    postgres = stack.servers.postgres.process
    assert postgres is not None
    with frozen(postgres.pid):
        # Answered once each create's statements and then its cleanup's have timed out.
        responses = await asyncio.gather(*creates)
    assert 503 in {response.status_code for response in responses}

    async def settled() -> bool:
        # (A statement the frozen server had received may still commit as it thaws: a
        # row moved to `running` after its runtime went fails at the next reconcile.)
        rows = await statuses(database, before)
        runtimes = runtime_ids(stack)
        return "creating" not in rows.values() and all(
            identifier in runtimes for identifier, status in rows.items() if status == "running"
        )

    await eventually(settled, within=90)
    rows = await statuses(database, before)
    runtimes = runtime_ids(stack)
    assert set(rows.values()) <= {"running", "failed"}, rows
    for identifier, status in rows.items():
        if status == "failed":
            assert identifier not in runtimes, f"orphan runtime {identifier}"
            assert not processes_naming(identifier), f"orphan processes of {identifier}"
    for response in responses:
        assert response.status_code in (201, 503), response.text
        if response.status_code == 201:
            assert rows[response.json()["id"]] == "running"
    assert sandbox_svc_pid(stack) == pid, "recovered without a restart"
    for identifier, status in rows.items():
        if status == "running":
            await api.delete(f"/sandboxes/{identifier}")


async def test_a_creating_row_of_a_live_sandbox_svc_that_no_create_works_on_is_failed(
    stack: Stack, api: httpx.AsyncClient, database: asyncpg.Connection
) -> None:
    """What a create whose cleanup failed leaves, made directly: the row `creating`,
    stamped by the sandbox-svc that lives on, its runtime there."""
    pid = sandbox_svc_pid(stack)
    sandbox_id = await created(api)
    await database.execute("UPDATE sandboxes SET status = 'creating' WHERE id = $1", sandbox_id)

    async def failed_and_gone() -> bool:
        status = await database.fetchval("SELECT status FROM sandboxes WHERE id = $1", sandbox_id)
        return status == "failed" and sandbox_id not in runtime_ids(stack)

    await eventually(failed_and_gone, within=30)
    assert not processes_naming(sandbox_id)

    async def told() -> bool:
        return (await events(database, sandbox_id))[-1:] == ["failed"]

    await eventually(told)
    assert sandbox_svc_pid(stack) == pid


async def as_a_cut_resume_leaves_it(database: asyncpg.Connection, sandbox_id: str) -> None:
    """The row as `store.unpause` commits it; the freezer not thawed yet."""
    await database.execute(
        "UPDATE sandboxes SET status = 'running',"
        " expires_at = expires_at + (now() - paused_at), paused_at = NULL WHERE id = $1",
        sandbox_id,
    )


async def as_a_cut_pause_leaves_it(database: asyncpg.Connection, sandbox_id: str) -> None:
    """The row as `store.pause` commits it; the freezer not frozen yet."""
    await database.execute(
        "UPDATE sandboxes SET status = 'paused', paused_at = now() WHERE id = $1", sandbox_id
    )


async def runs(api: httpx.AsyncClient, sandbox_id: str) -> None:
    ran = await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": "print(6 * 7)"}
    )
    assert (ran.status_code, ran.json().get("stdout")) == (200, "42\n"), ran.text


@FREEZES
async def test_a_freezer_that_disagrees_with_its_row_is_brought_to_the_row(
    stack: Stack, api: httpx.AsyncClient, database: asyncpg.Connection
) -> None:
    """A resume cut after its commit: the row `running`, the sandbox frozen (every
    execution refused, and a resume answered 200 as it is). A pause cut after its
    commit: the row `paused`, the sandbox running on. The sandbox-svc that lives on thaws
    the one and freezes the other, each with the event its call did not send."""
    pid = sandbox_svc_pid(stack)
    resumed, paused = await created(api), await created(api)
    assert (await api.post(f"/sandboxes/{resumed}/pause")).status_code == 200
    await as_a_cut_resume_leaves_it(database, resumed)
    await as_a_cut_pause_leaves_it(database, paused)
    assert frozen_runtime(stack, resumed)
    assert not frozen_runtime(stack, paused)

    async def repaired() -> bool:
        return not frozen_runtime(stack, resumed) and frozen_runtime(stack, paused)

    await eventually(repaired, within=REPAIRED_WITHIN)
    await runs(api, resumed)
    assert (await api.post(f"/sandboxes/{paused}/resume")).status_code == 200
    await runs(api, paused)

    async def told() -> bool:
        return (await events(database, resumed))[-1:] == ["resumed"] and (
            await events(database, paused)
        )[-2:] == ["paused", "resumed"]

    await eventually(told)
    assert (await events(database, resumed)).count("resumed") == 1
    assert sandbox_svc_pid(stack) == pid
    for sandbox_id in (resumed, paused):
        await api.delete(f"/sandboxes/{sandbox_id}")


@FREEZES
async def test_a_resume_asked_of_a_cut_resumes_frozen_sandbox_thaws_it_at_once(
    stack: Stack, api: httpx.AsyncClient, database: asyncpg.Connection
) -> None:
    """It answered 200 as it is and left the sandbox frozen until the repair's pass."""
    sandbox_id = await created(api)
    assert (await api.post(f"/sandboxes/{sandbox_id}/pause")).status_code == 200
    await as_a_cut_resume_leaves_it(database, sandbox_id)
    resumed = await api.post(f"/sandboxes/{sandbox_id}/resume")
    assert resumed.json()["status"] == "running", resumed.text
    assert not frozen_runtime(stack, sandbox_id)
    await runs(api, sandbox_id)

    async def told() -> bool:
        return (await events(database, sandbox_id))[-1:] == ["resumed"]

    await eventually(told)
    await api.delete(f"/sandboxes/{sandbox_id}")


@FREEZES
async def test_a_resume_cut_by_killing_sandbox_svc_is_finished_by_the_one_started_again(
    stack: Stack, api: httpx.AsyncClient, database: asyncpg.Connection
) -> None:
    """sandbox-svc killed right after a resume committed its row: the sandbox-svc started
    again thaws the sandbox, which then runs code again."""
    sandbox_id = await created(api)
    await runs(api, sandbox_id)
    assert (await api.post(f"/sandboxes/{sandbox_id}/pause")).status_code == 200
    await as_a_cut_resume_leaves_it(database, sandbox_id)
    stack.kill("sandbox-svc")
    await stack.wait_ready("sandbox-svc")
    assert frozen_runtime(stack, sandbox_id)

    async def thawed() -> bool:
        return not frozen_runtime(stack, sandbox_id)

    await eventually(thawed, within=REPAIRED_WITHIN)
    await runs(api, sandbox_id)
    await api.delete(f"/sandboxes/{sandbox_id}")
