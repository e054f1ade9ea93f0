"""One API client and one "witness" sandbox per module: it must keep answering throughout."""

from collections.abc import AsyncIterator

import httpx
import pytest

from .probes import create, run


@pytest.fixture(scope="module")
async def client(stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=90) as api:
        yield api


@pytest.fixture(scope="module")
async def witness(client: httpx.AsyncClient) -> AsyncIterator[str]:
    created = await create(client)
    assert created.status_code == 201, created.text
    sandbox_id: str = created.json()["id"]
    await run(client, sandbox_id, "open('/workspace/witness-secret', 'w').write('w1tness')")
    yield sandbox_id
    assert (await run(client, sandbox_id, "1 + 1"))["result"] == "2"
    await client.delete(f"/sandboxes/{sandbox_id}")
