"""Issue 16 through the public API: sandbox code against its agent and exec-svc's
connection to it (item 2), bad requests that used to kill that connection, and the
per-user memory quota against what the host can give (item 5)."""

import secrets

import httpx
import pytest

from .probes import create, run


@pytest.fixture(scope="module")
async def sandbox(client: httpx.AsyncClient) -> str:
    created = await create(client)
    assert created.status_code == 201, created.text
    sandbox_id: str = created.json()["id"]
    return sandbox_id


async def test_sandbox_code_cannot_stop_its_agent_or_touch_its_socket(
    client: httpx.AsyncClient, sandbox: str
) -> None:
    attack = (
        "kill -STOP $PPID; echo stop=$?; kill -KILL -1; echo all=$?; "
        "mv /run/llmsafespace/agent.sock /tmp/x; echo mv=$?; "
        "ln -sf / /run/llmsafespace/agent.sock; echo ln=$?"
    )
    body = await run(client, sandbox, attack, kind="command", timeout=20)
    assert body["stdout"] == "stop=1\nall=1\nmv=1\nln=1\n", body
    after = await run(client, sandbox, "echo still mine", kind="command", timeout=20)
    assert after["stdout"] == "still mine\n"


BAD_REQUESTS = {
    "NUL in the command": {"content": "echo a\0b"},
    "NUL in an env value": {"content": "true", "env": {"A": "x\0y"}},
    "'=' in an env name": {"content": "true", "env": {"A=B": "x"}},
    "NUL in the working dir": {"content": "true", "workingDir": "/tmp\0x"},
    "a working dir that does not exist": {"content": "true", "workingDir": "/nonexistent"},
}


@pytest.mark.parametrize("fields", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
async def test_a_bad_command_is_a_400_and_the_sandbox_keeps_answering(
    client: httpx.AsyncClient, sandbox: str, fields: dict[str, object]
) -> None:
    response = await client.post(
        f"/sandboxes/{sandbox}/execute", json={"type": "command", "timeout": 20, **fields}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    after = await run(client, sandbox, "echo ok", kind="command", timeout=20)
    assert after["stdout"] == "ok\n"


async def test_a_users_memory_quota_never_exceeds_what_the_host_can_give(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/users", json={"username": f"q-{secrets.token_hex(5)}"})
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['apiKey']}"}
    async with httpx.AsyncClient(base_url=str(client.base_url), headers=headers) as user:
        # 64Gi is the configured per-user quota, more than this host's sandboxes may use
        response = await create(user, resources={"memory": "64Gi"})
        assert response.status_code == 429, response.text
        details = response.json()["error"]["details"]
        assert details["resource"] == "memory"
        assert details["limit"] < 64 * 2**30
