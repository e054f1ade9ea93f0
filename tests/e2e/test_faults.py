"""A service that is down is reported as such, and its sandboxes outlive it."""

import httpx
import pytest

from llmsafespace.devstack import Stack

pytestmark = pytest.mark.stack


async def test_a_stopped_service_answers_503_quickly_and_recovers(
    stack: Stack, api: httpx.AsyncClient, sandbox_id: str
) -> None:
    body = {"type": "code", "content": "print('back')"}
    async with stack.stopped("exec-svc"):
        down = await api.post(f"/sandboxes/{sandbox_id}/execute", json=body)
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "service_unavailable"
    again = await api.post(f"/sandboxes/{sandbox_id}/execute", json=body)
    assert (again.status_code, again.json()["stdout"]) == (200, "back\n")

    async with stack.stopped("sandbox-svc"):
        down = await api.post("/sandboxes", json={})
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "service_unavailable"


async def test_a_sandbox_keeps_its_state_across_a_sandbox_svc_restart(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    sandbox = (await api.post("/sandboxes", json={})).json()
    execute = f"/sandboxes/{sandbox['id']}/execute"
    await api.post(execute, json={"type": "code", "content": "kept = 'yes'"})

    await stack.restart("sandbox-svc")

    assert (await api.get(f"/sandboxes/{sandbox['id']}")).json()["status"] == "running"
    after = await api.post(execute, json={"type": "code", "content": "print(kept)"})
    assert after.json()["stdout"] == "yes\n"
    await api.delete(f"/sandboxes/{sandbox['id']}")
