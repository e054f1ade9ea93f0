"""Per-user quotas (live sandboxes, their total memory, the workspace storage of live and
paused ones, templates) and the code size limit.

The session's stack runs with `SANDBOX_SVC_QUOTA_SANDBOXES=3`,
`SANDBOX_SVC_QUOTA_MEMORY=2Gi`, `SANDBOX_SVC_QUOTA_STORAGE=12Gi` and
`SANDBOX_SVC_QUOTA_TEMPLATES=2` (tests/conftest.py); admins are exempt.
"""

import asyncio
import json
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets

from llmsafespace.contracts import MAX_CODE_BYTES, new_execution_id, quantity_bytes
from llmsafespace.devstack import Stack

pytestmark = pytest.mark.stack

QUOTA_SANDBOXES = 3
QUOTA_MEMORY = quantity_bytes("2Gi")
QUOTA_STORAGE = quantity_bytes("12Gi")
QUOTA_TEMPLATES = 2
OVERSIZED_CODE = "#" * (600 * 1024)


@pytest.fixture
async def user(stack: Stack, api: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh plain user (no sandboxes yet); whatever they created is deleted afterwards."""
    created = await api.post("/users", json={"username": f"quota-{secrets.token_hex(4)}"})
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['apiKey']}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as client:
        yield client
        listed = (await client.get("/sandboxes", params={"status": "running"})).json()
        for sandbox in listed["sandboxes"]:
            await client.delete(f"/sandboxes/{sandbox['id']}")


def quota_error(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 429, response.text
    error: dict[str, object] = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["message"]
    details = error["details"]
    assert isinstance(details, dict)
    return details


async def test_concurrent_creates_never_overshoot_the_sandbox_quota(
    user: httpx.AsyncClient,
) -> None:
    attempts = await asyncio.gather(*(user.post("/sandboxes", json={}) for _ in range(6)))
    created = [response for response in attempts if response.status_code == 201]
    refused = [response for response in attempts if response.status_code != 201]
    assert len(created) == QUOTA_SANDBOXES, [response.text for response in attempts]
    for response in refused:
        details = quota_error(response)
        assert details == {
            "resource": "sandboxes",
            "limit": QUOTA_SANDBOXES,
            "current": QUOTA_SANDBOXES,
            "requested": 1,
        }
    # Ending one frees its place.
    assert (await user.delete(f"/sandboxes/{created[0].json()['id']}")).status_code == 200
    again = await user.post("/sandboxes", json={})
    assert again.status_code == 201, again.text


async def test_the_memory_quota_counts_live_sandboxes(user: httpx.AsyncClient) -> None:
    too_big = await user.post("/sandboxes", json={"resources": {"memory": "3Gi"}})
    assert quota_error(too_big) == {
        "resource": "memory",
        "limit": QUOTA_MEMORY,
        "current": 0,
        "requested": quantity_bytes("3Gi"),
    }
    first = await user.post("/sandboxes", json={"resources": {"memory": "1536Mi"}})
    assert first.status_code == 201, first.text
    over = await user.post("/sandboxes", json={"resources": {"memory": "1Gi"}})
    assert quota_error(over) == {
        "resource": "memory",
        "limit": QUOTA_MEMORY,
        "current": quantity_bytes("1536Mi"),
        "requested": quantity_bytes("1Gi"),
    }
    fits = await user.post("/sandboxes", json={"resources": {"memory": "512Mi"}})
    assert fits.status_code == 201, fits.text
    await user.delete(f"/sandboxes/{first.json()['id']}")
    after = await user.post("/sandboxes", json={"resources": {"memory": "1Gi"}})
    assert after.status_code == 201, after.text


async def test_the_storage_quota_counts_paused_sandboxes_too(user: httpx.AsyncClient) -> None:
    too_big = await user.post("/sandboxes", json={"resources": {"ephemeralStorage": "13Gi"}})
    assert quota_error(too_big) == {
        "resource": "storage",
        "limit": QUOTA_STORAGE,
        "current": 0,
        "requested": quantity_bytes("13Gi"),
    }
    first = await user.post("/sandboxes", json={"resources": {"ephemeralStorage": "8Gi"}})
    assert first.status_code == 201, first.text
    first_id = first.json()["id"]
    paused = await user.post(f"/sandboxes/{first_id}/pause")
    assert paused.status_code == 200, paused.text
    over = await user.post("/sandboxes", json={"resources": {"ephemeralStorage": "5Gi"}})
    assert quota_error(over) == {
        "resource": "storage",
        "limit": QUOTA_STORAGE,
        "current": quantity_bytes("8Gi"),
        "requested": quantity_bytes("5Gi"),
    }
    assert (await user.delete(f"/sandboxes/{first_id}")).status_code == 200
    after = await user.post("/sandboxes", json={"resources": {"ephemeralStorage": "5Gi"}})
    assert after.status_code == 201, after.text


async def _failing_template(client: httpx.AsyncClient, name: str) -> httpx.Response:
    """Create a template whose build fails at once; wait for the build to end."""
    created = await client.post("/templates", json={"name": name, "setupCommands": ["false"]})
    if created.status_code != 201:
        return created
    async with asyncio.timeout(120):
        while True:
            status = (await client.get(f"/templates/{name}")).json()["status"]
            if status != "building":
                assert status == "failed", status
                return created
            await asyncio.sleep(0.2)


async def test_a_user_keeps_at_most_the_template_quota_of_templates(
    user: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    """However they ended: a failed template counts until deleted. Admins are exempt."""
    names = [f"tpl-quota-{secrets.token_hex(4)}" for _ in range(2 * QUOTA_TEMPLATES + 2)]
    mine, admins = names[: QUOTA_TEMPLATES + 1], names[QUOTA_TEMPLATES + 1 :]
    try:
        for name in mine[:QUOTA_TEMPLATES]:
            created = await _failing_template(user, name)
            assert created.status_code == 201, created.text
        refused = await user.post("/templates", json={"name": mine[-1]})
        assert quota_error(refused) == {
            "resource": "templates",
            "limit": QUOTA_TEMPLATES,
            "current": QUOTA_TEMPLATES,
            "requested": 1,
        }
        assert (await user.get(f"/templates/{mine[-1]}")).status_code == 404
        assert (await user.delete(f"/templates/{mine[0]}")).status_code == 200
        again = await _failing_template(user, mine[-1])
        assert again.status_code == 201, again.text
        for name in admins:
            created = await _failing_template(api, name)
            assert created.status_code == 201, created.text
    finally:
        for name in names:
            await api.delete(f"/templates/{name}")


async def test_an_absurd_workspace_size_is_a_validation_error(user: httpx.AsyncClient) -> None:
    response = await user.post(
        "/sandboxes", json={"resources": {"ephemeralStorage": "9999999999999Ti"}}
    )
    assert response.status_code == 400, response.text
    assert "at most 1Pi" in response.text


async def test_admins_are_exempt(api: httpx.AsyncClient) -> None:
    response = await api.post("/sandboxes", json={"resources": {"memory": "3Gi"}})
    assert response.status_code == 201, response.text
    await api.delete(f"/sandboxes/{response.json()['id']}")


async def test_code_over_the_limit_is_413_over_rest(
    api: httpx.AsyncClient, sandbox_id: str
) -> None:
    for stream in (False, True):
        response = await api.post(
            f"/sandboxes/{sandbox_id}/execute",
            json={"type": "code", "content": OVERSIZED_CODE, "stream": stream},
        )
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["code"] == "payload_too_large"
        assert error["details"]["limit"] == MAX_CODE_BYTES
    at_limit = "#" * MAX_CODE_BYTES
    response = await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": "code", "content": at_limit}
    )
    assert response.status_code == 200, response.text


async def test_code_over_the_limit_is_payload_too_large_over_websocket(
    stack: Stack, sandbox_id: str
) -> None:
    url = stack.api_url.replace("http://", "ws://") + f"/sandboxes/{sandbox_id}/stream"
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        execution_id = new_execution_id()
        message = {
            "type": "execute",
            "executionId": execution_id,
            "mode": "code",
            "content": OVERSIZED_CODE,
        }
        await ws.send(json.dumps(message))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert reply["type"] == "error"
        assert (reply["code"], reply.get("executionId")) == ("payload_too_large", execution_id)
