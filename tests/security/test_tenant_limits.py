"""Issue 16 item 4: warm pools bypassed the per-user quota (two pools of `minSize: 60` gave
one ordinary user 120 ready sandboxes while the quota counted 4). Issue 16 item 7: an
execution id was global — another tenant's running `exec-1` made mine a 409 and told me
it existed. Issue 14 items 1-2: a pool named `status` was unreachable; client-chosen
execution ids had to start with `exec-`."""

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from llmsafespace.devstack import Stack

from .probes import create

WAIT = 60  # seconds any one expected message may take on a loaded machine


@pytest.fixture
async def user(stack: Stack, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh ordinary user (the suite's quota: 3 live sandboxes, 2Gi of memory)."""
    made = await client.post("/users", json={"username": f"tenant-{secrets.token_hex(4)}"})
    assert made.status_code == 201, made.text
    headers = {"Authorization": f"Bearer {made.json()['apiKey']}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=90) as api:
        yield api
        for pool in (await api.get("/warmpools")).json()["warmPools"]:
            await api.delete(f"/warmpools/{pool['name']}")
        for sandbox in (await api.get("/sandboxes")).json()["sandboxes"]:
            await api.delete(f"/sandboxes/{sandbox['id']}")


def _pool(name: str, **spec: Any) -> dict[str, Any]:
    return {"name": f"{name}-{secrets.token_hex(3)}", "minSize": 0, **spec}


def _error(response: httpx.Response) -> tuple[int, str, dict[str, Any]]:
    error = response.json()["error"]
    return response.status_code, error["code"], error.get("details", {})


async def test_warm_pools_count_against_their_owners_quota(user: httpx.AsyncClient) -> None:
    # The attack: a pool far beyond the quota. Only admins may make large pools.
    huge = await user.post("/warmpools", json=_pool("huge", minSize=60, maxSize=60))
    status, code, details = _error(huge)
    assert (status, code, details["field"]) == (403, "forbidden", "minSize"), huge.text

    # A pool that may grow to 2 reserves 2 of the 3 sandboxes (and 2 x 512Mi of memory)...
    scaling = {"enabled": True, "scaleDownDelay": 60}
    first = await user.post("/warmpools", json=_pool("a", maxSize=2, autoScaling=scaling))
    assert first.status_code == 201, first.text
    # ...so a second such pool does not fit,
    second = await user.post("/warmpools", json=_pool("b", maxSize=2, autoScaling=scaling))
    status, code, details = _error(second)
    assert (status, code, details["resource"]) == (429, "quota_exceeded", "sandboxes")
    # nor growing the first beyond the quota,
    grown = await user.patch(f"/warmpools/{first.json()['name']}", json={"maxSize": 4})
    assert _error(grown)[:2] == (429, "quota_exceeded"), grown.text
    # and sandboxes count beside the reservation: 2 reserved + 1 fits, a 2nd does not.
    third = await user.patch(f"/warmpools/{first.json()['name']}", json={"maxSize": 3})
    assert third.status_code == 200, third.text
    refused = await create(user)
    status, code, details = _error(refused)
    assert (status, code, details["resource"]) == (429, "quota_exceeded", "sandboxes")


async def test_warm_pools_per_user_are_limited(user: httpx.AsyncClient) -> None:
    for index in range(5):  # WARMPOOL_SVC_MAX_POOLS_PER_USER's default
        made = await user.post("/warmpools", json=_pool(f"p{index}"))
        assert made.status_code == 201, made.text
    sixth = await user.post("/warmpools", json=_pool("p5"))
    status, code, details = _error(sixth)
    assert (status, code, details["resource"]) == (429, "quota_exceeded", "warmPools")


async def test_a_pool_cannot_be_named_like_another_route(user: httpx.AsyncClient) -> None:
    named = await user.post("/warmpools", json={"name": "status", "minSize": 0})
    status, code, details = _error(named)
    assert (status, code) == (400, "invalid_request"), named.text
    assert list(details["fields"]) == ["name"]


async def test_pool_names_are_per_owner_and_reveal_nothing(
    stack: Stack, client: httpx.AsyncClient, user: httpx.AsyncClient
) -> None:
    """Issue 16 item 7: a create answered 409 for a name another user's pool had."""
    name = f"mine-{secrets.token_hex(3)}"
    made = await client.post("/users", json={"username": f"other-{secrets.token_hex(4)}"})
    headers = {"Authorization": f"Bearer {made.json()['apiKey']}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=90) as other:
        first = await user.post("/warmpools", json={"name": name, "minSize": 0})
        second = await other.post("/warmpools", json={"name": name, "minSize": 0})
        assert (first.status_code, second.status_code) == (201, 201), second.text
        assert first.json()["name"] == second.json()["name"] == name
        assert first.json()["ownerId"] != second.json()["ownerId"]
        again = await user.post("/warmpools", json={"name": name, "minSize": 0})
        assert again.status_code == 409  # the owner's own name, as before
        # Each reaches its own; an admin is told the name is ambiguous, with the owners.
        seen = (await other.get(f"/warmpools/{name}")).json()
        assert seen["ownerId"] == second.json()["ownerId"]
        ambiguous = await client.get(f"/warmpools/{name}")
        assert _error(ambiguous)[:2] == (409, "conflict"), ambiguous.text
        assert (await other.delete(f"/warmpools/{name}")).status_code == 200
        assert (await other.get(f"/warmpools/{name}")).status_code == 404
        assert (await user.get(f"/warmpools/{name}")).json()["ownerId"] == first.json()["ownerId"]
        # With one such pool left, an admin reaches it by name.
        assert (await client.get(f"/warmpools/{name}")).status_code == 200


async def _connect(stack: Stack, sandbox_id: str, key: str) -> ClientConnection:
    url = f"{stack.api_url.replace('http://', 'ws://')}/sandboxes/{sandbox_id}/stream"
    return await websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"})


async def _next(ws: ClientConnection, execution_id: str) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), WAIT))
        if message.get("executionId") == execution_id:
            return message


async def test_execution_ids_are_the_clients_and_scoped_to_their_sandbox(
    stack: Stack, client: httpx.AsyncClient, user: httpx.AsyncClient
) -> None:
    mine = await create(client)
    theirs = await create(user)
    assert mine.status_code == theirs.status_code == 201, (mine.text, theirs.text)
    execution_id = str(uuid.uuid4())  # a UUID: not `exec-…`
    user_key = user.headers["Authorization"].removeprefix("Bearer ")
    try:
        async with (
            await _connect(stack, mine.json()["id"], stack.admin_key) as ws_mine,
            await _connect(stack, theirs.json()["id"], user_key) as ws_theirs,
        ):
            await ws_mine.send(
                json.dumps(
                    {
                        "type": "execute",
                        "executionId": execution_id,
                        "mode": "code",
                        "content": "import time\nprint('up', flush=True)\ntime.sleep(300)",
                    }
                )
            )
            while (message := await _next(ws_mine, execution_id))["type"] != "output":
                assert message["type"] == "execution_start", message
            # The other tenant's execution of the same id runs: no 409, nothing revealed.
            await ws_theirs.send(
                json.dumps(
                    {
                        "type": "execute",
                        "executionId": execution_id,
                        "mode": "code",
                        "content": "print(6 * 7)",
                    }
                )
            )
            while (message := await _next(ws_theirs, execution_id))["type"] not in (
                "execution_complete",
                "error",
            ):
                pass
            assert message["type"] == "execution_complete", message
            assert message["status"] == "completed", message
            # Their cancel of that id reaches nothing of mine; mine cancels mine.
            cancel = {"type": "cancel", "executionId": execution_id}
            await ws_mine.send(json.dumps(cancel))
            while (message := await _next(ws_mine, execution_id))["type"] not in (
                "execution_cancelled",
                "error",
            ):
                pass
            assert message["type"] == "execution_cancelled", message
    finally:
        await client.delete(f"/sandboxes/{mine.json()['id']}")
        await user.delete(f"/sandboxes/{theirs.json()['id']}")
