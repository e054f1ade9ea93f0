"""The skeleton path through the real stack: HTTP → gateway → NATS → services → sandbox."""

import asyncio

import httpx
import pytest

pytestmark = pytest.mark.stack


async def execute(
    api: httpx.AsyncClient, sandbox_id: str, content: str, kind: str = "code", **extra: object
) -> dict[str, object]:
    response = await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": kind, "content": content, **extra}
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_a_sandbox_keeps_state_runs_commands_survives_a_timeout_and_is_deleted(
    api: httpx.AsyncClient, sandbox_processes
) -> None:
    created = await api.post("/sandboxes", json={"timeout": 600})
    assert created.status_code == 201, created.text
    sandbox = created.json()
    sandbox_id = sandbox["id"]
    assert sandbox["status"] == "running"
    assert sandbox["endpoints"]["execute"].endswith(f"/sandboxes/{sandbox_id}/execute")
    assert sandbox_processes(sandbox_id), "the sandbox should have live processes"

    first = await execute(api, sandbox_id, "x = 41")
    assert (first["status"], first["exitCode"], first["stdout"]) == ("completed", 0, "")

    second = await execute(api, sandbox_id, "print(x + 1)")
    assert (second["status"], second["exitCode"], second["stdout"]) == ("completed", 0, "42\n")
    assert second["usage"]["cpuMs"] >= 0

    command = await execute(api, sandbox_id, "echo out; echo err >&2; exit 3", kind="command")
    assert (command["exitCode"], command["stdout"], command["stderr"]) == (3, "out\n", "err\n")
    assert command["status"] == "failed"

    spin = await execute(api, sandbox_id, "while True: pass", timeout=1)
    assert (spin["status"], spin["exitCode"]) == ("timeout", 124)

    after = await execute(api, sandbox_id, "print(x)")
    assert (after["status"], after["stdout"]) == ("completed", "41\n")

    deleted = await api.delete(f"/sandboxes/{sandbox_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["status"] == "terminated"
    assert sandbox_processes(sandbox_id) == []

    gone = await api.post(f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": "1"})
    assert gone.status_code == 409
    assert gone.json()["error"]["code"] == "sandbox_not_running"


async def test_code_returns_its_last_expression_and_structured_errors(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    value = await execute(api, sandbox_id, "a = [1, 2]\na + [3]")
    assert (value["status"], value["result"], value["stdout"]) == ("completed", "[1, 2, 3]", "")

    failed = await execute(api, sandbox_id, "def f():\n    return 1 / 0\nf()")
    assert (failed["status"], failed["exitCode"]) == ("failed", 1)
    error = failed["error"]
    assert (error["name"], error["value"]) == ("ZeroDivisionError", "division by zero")
    assert "return 1 / 0" in error["traceback"]


async def test_get_shows_the_sandbox_and_a_deleted_one_stays_terminated(
    api: httpx.AsyncClient,
) -> None:
    created = (await api.post("/sandboxes", json={"metadata": {"task": "t1"}})).json()
    fetched = await api.get(f"/sandboxes/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["metadata"] == {"task": "t1"}
    await api.delete(f"/sandboxes/{created['id']}")
    again = await api.delete(f"/sandboxes/{created['id']}")
    assert again.status_code == 200
    assert again.json()["status"] == "terminated"


async def test_a_sandbox_past_its_lifetime_is_ended_by_the_reaper(
    api: httpx.AsyncClient, sandbox_processes
) -> None:
    sandbox = (await api.post("/sandboxes", json={"timeout": 1})).json()
    assert sandbox_processes(sandbox["id"])
    for _ in range(100):
        current = (await api.get(f"/sandboxes/{sandbox['id']}")).json()
        if current["status"] != "running":
            break
        await asyncio.sleep(0.1)
    assert (current["status"], current["statusReason"]) == ("terminated", "expired")
    assert sandbox_processes(sandbox["id"]) == []
