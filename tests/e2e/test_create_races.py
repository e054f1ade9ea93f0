"""A create racing a DELETE of the same sandbox: the delete wins, and the create says the
sandbox ended while it was being created (409 `sandbox_not_running`), whichever step of
the start the delete cut short — never a runtime failure (503) the caller did not cause."""

import asyncio
import secrets

import httpx

from llmsafespace.contracts import RuntimeId
from llmsafespace.runtime import Driver

ROUNDS = 6


async def _delete_while_creating(api: httpx.AsyncClient) -> tuple[str | None, httpx.Response]:
    """A cold create, deleted as soon as its row shows `creating`: the id deleted (None
    when the create was done first) and the create's answer."""
    mark = secrets.token_hex(6)
    body = {"useWarmPool": False, "timeout": 120, "metadata": {"race": mark}}
    create = asyncio.create_task(api.post("/sandboxes", json=body))
    query = {"status": "creating", "metadata.race": mark}
    while not create.done():
        listed = (await api.get("/sandboxes", params=query)).json()["sandboxes"]
        if listed:
            deleted = await api.delete(f"/sandboxes/{listed[0]['id']}")
            assert deleted.status_code == 200, deleted.text
            return listed[0]["id"], await create
    return None, await create


async def test_a_create_whose_sandbox_is_deleted_while_it_starts_answers_409(
    api: httpx.AsyncClient, runtime_driver: Driver
) -> None:
    raced = [await _delete_while_creating(api) for _ in range(ROUNDS)]
    for deleted, answer in raced:
        if deleted is None:  # done before its row was seen `creating`: no race
            assert (await api.delete(f"/sandboxes/{answer.json()['id']}")).status_code == 200
            continue
        identifier = deleted
        if answer.status_code == 201:  # started before the delete came: the delete ended it
            assert answer.json()["id"] == identifier
        else:
            assert answer.status_code == 409, answer.text
            error = answer.json()["error"]
            assert error["code"] == "sandbox_not_running"
            assert error["message"] == f"sandbox {identifier} ended while being created"
        assert (await api.get(f"/sandboxes/{identifier}")).json()["status"] == "terminated"
        assert await runtime_driver.inspect(RuntimeId(identifier)) is None
    assert any(answer.status_code == 409 for _, answer in raced), [a.text for _, a in raced]
