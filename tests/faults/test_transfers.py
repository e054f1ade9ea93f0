"""File transfers cut by an exec-svc crash: the transfer's subject then has nobody behind
it, and each message the gateway sends meets the server's "no responders". A download
breaks its connection at once (its status line is gone already), an upload answers 503,
and neither leaves a file behind or a gateway spinning."""

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from llmsafespace.devstack import Stack

pytestmark = pytest.mark.stack

MIB = 1024 * 1024
FAST = 10.0  # seconds: a cut transfer is reported well within this, never a hang


@pytest.fixture(scope="module")
async def sandbox_id(stack: Stack) -> AsyncIterator[str]:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
        created = await api.post("/sandboxes", json={"timeout": 900})
        assert created.status_code == 201, created.text
        identifier: str = created.json()["id"]
        yield identifier
        await api.delete(f"/sandboxes/{identifier}")


async def kill_exec_svc(stack: Stack) -> None:
    """SIGKILL exec-svc and wait until it is dead (the devstack restarts it soon after;
    the new process knows nothing of the old one's transfers)."""
    killed = stack.services["exec-svc"].process
    assert killed is not None
    stack.kill("exec-svc")
    await asyncio.to_thread(killed.wait, 30)


async def test_a_download_cut_by_an_exec_svc_crash_breaks_the_connection_promptly(
    stack: Stack, api: httpx.AsyncClient, sandbox_id: str
) -> None:
    size = 100 * MIB  # more than the socket buffers between the client and exec-svc hold
    made = await api.post(
        f"/sandboxes/{sandbox_id}/execute",
        json={"type": "command", "content": f"head -c {size} /dev/zero > /workspace/big"},
    )
    assert made.json()["exitCode"] == 0, made.text
    received = 0
    async with api.stream("GET", f"/sandboxes/{sandbox_id}/files/workspace/big") as download:
        assert download.status_code == 200
        pieces = download.aiter_raw()
        while received < 10 * MIB:
            received += len(await anext(pieces))
        # The client pauses: the chunks exec-svc sent for the pulls in flight wait in the
        # gateway, which pulls again (to nobody) once the client reads on.
        await asyncio.sleep(1)
        await kill_exec_svc(stack)

        async def read_on() -> None:
            nonlocal received
            async for piece in pieces:
                received += len(piece)

        with pytest.raises(httpx.RemoteProtocolError):  # the body ends short
            await asyncio.wait_for(read_on(), FAST)
    assert received < size
    await stack.wait_ready("exec-svc")


async def test_an_upload_cut_by_an_exec_svc_crash_answers_503_and_leaves_no_file(
    stack: Stack, api: httpx.AsyncClient, sandbox_id: str
) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"x" * MIB
        await asyncio.sleep(1)  # exec-svc has acknowledged what it got
        await kill_exec_svc(stack)
        yield b"x" * MIB

    path = f"/sandboxes/{sandbox_id}/files/workspace/cut-upload"
    cut = await asyncio.wait_for(api.put(path, content=body()), FAST + 30)
    assert cut.status_code == 503, cut.text
    assert cut.json()["error"]["code"] == "service_unavailable"
    await stack.wait_ready("exec-svc")
    assert (await api.get(path)).status_code == 404
