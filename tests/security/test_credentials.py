"""Credentials stay secret and stay revocable: nothing an API user sends gets a secret
into a log, revoking a key or a token's expiry ends the sockets it opened, tokens are
checked to the byte, and more keys buy no more requests."""

import asyncio
import contextlib
import json
import secrets
import stat
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from llmsafespace.devstack import Stack
from llmsafespace.gateway import tokens

pytestmark = pytest.mark.stack

HUGE = "9" * 5000
# Each of these was a 500 whose traceback (with frame locals) went to the gateway's log.
# They are 4xx now, so no 500 happens here: a real one, with secrets in its frame, is
# forced through the gateway's error middleware and logging in
# services/api-gateway/tests/test_secret_free_logs.py.
FORMER_500S = [
    ("POST", "/sandboxes", '{"timeout": ' + HUGE + "}"),
    ("POST", "/sandboxes", '{"metadata": {"k": "\\ud800"}}'),
    ("POST", "/sandboxes", '{"env": {"A": "\\ud800"}}'),
    ("POST", "/user/apikeys", '{"name": "x\\u0000"}'),
    ("POST", "/sandboxes/{sandbox}/execute", '{"type": "code", "content": "\\ud800"}'),
    ("POST", "/sandboxes/{sandbox}/execute", '{"type": "code", "content": "1", "n": ' + HUGE + "}"),
    ("GET", "/sandboxes/{sandbox}%0A", ""),
]


@pytest.fixture(scope="module")
async def user(client: httpx.AsyncClient) -> dict[str, str]:
    """A plain user (the attacker): their id and first key."""
    made = await client.post("/users", json={"username": f"mallory-{secrets.token_hex(4)}"})
    assert made.status_code == 201, made.text
    return {"id": made.json()["user"]["id"], "key": made.json()["apiKey"]}


@pytest.fixture
async def user_api(stack: Stack, user: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {user['key']}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=90) as api:
        yield api


@pytest.fixture(scope="module")
async def user_sandbox(stack: Stack, user: dict[str, str]) -> AsyncIterator[str]:
    headers = {"Authorization": f"Bearer {user['key']}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=90) as api:
        created = await api.post("/sandboxes", json={"timeout": 900})
        assert created.status_code == 201, created.text
        yield created.json()["id"]
        await api.delete(f"/sandboxes/{created.json()['id']}")


async def test_the_former_500s_stay_4xx_and_put_no_secret_in_any_log(
    stack: Stack, user: dict[str, str], user_api: httpx.AsyncClient, user_sandbox: str
) -> None:
    for method, path, body in FORMER_500S:
        response = await user_api.request(
            method, path.format(sandbox=user_sandbox), content=body.encode()
        )
        assert response.status_code < 500, (path, body[:80], response.text)
        assert (await user_api.get("/user")).status_code == 200, "the gateway still answers"
    secrets_to_keep = {
        "the token-signing secret": (stack.state_dir / "token.secret").read_text().strip(),
        "the bootstrap admin key": stack.admin_key,
        "the caller's key": user["key"],
    }
    for password in [
        *stack.state_dir.glob("*.password"),  # embedded PostgreSQL and Valkey
        *stack.state_dir.glob("nats-users/*.password"),  # each service's NATS user
    ]:
        secrets_to_keep[f"the password in {password.name}"] = password.read_text().strip()
    logs = sorted(stack.log_dir.glob("*.log"))
    assert logs, "the stack writes logs"
    for log in logs:
        text = log.read_text(errors="replace")
        for name, secret in secrets_to_keep.items():
            assert secret not in text, f"{name} is in {log.name}"


def test_logs_are_readable_by_their_owner_only(stack: Stack) -> None:
    assert stat.S_IMODE(stack.log_dir.stat().st_mode) == 0o700
    for log in stack.log_dir.glob("*.log"):
        assert stat.S_IMODE(log.stat().st_mode) == 0o600, log.name


def ws_url(stack: Stack, sandbox_id: str) -> str:
    return f"{stack.api_url.replace('http://', 'ws://')}/sandboxes/{sandbox_id}/stream"


async def answers_until_closed(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every message until the server closes the socket."""
    received = []
    with contextlib.suppress(websockets.ConnectionClosedError):  # 4401 is not a normal close
        async for raw in ws:
            received.append(json.loads(raw))
    return received


async def runs(ws: ClientConnection, execution_id: str) -> dict[str, Any]:
    await ws.send(
        json.dumps(
            {"type": "execute", "executionId": execution_id, "mode": "code", "content": "6*7"}
        )
    )
    while (message := json.loads(await ws.recv()))["type"] not in ("execution_complete", "error"):
        pass
    return message


async def new_key(api: httpx.AsyncClient) -> tuple[str, str]:
    made = await api.post("/user/apikeys", json={"name": "socket"})
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["apiKey"]


AFTER_REVOCATION = {
    "execute": {"type": "execute", "executionId": "exec-after", "mode": "code", "content": "1"},
    "ping": {"type": "ping"},  # checked like the rest (README: "with every message")
}


@pytest.mark.parametrize("sent", AFTER_REVOCATION)
@pytest.mark.parametrize("via", ["key", "token"])
async def test_revoking_a_key_ends_the_sockets_it_opened(
    stack: Stack, user_api: httpx.AsyncClient, user_sandbox: str, via: str, sent: str
) -> None:
    key_id, key = await new_key(user_api)
    credential = key
    if via == "token":
        minted = await user_api.post("/auth/token", headers={"Authorization": f"Bearer {key}"})
        credential = minted.json()["token"]
    headers = {"Authorization": f"Bearer {credential}"}
    async with websockets.connect(ws_url(stack, user_sandbox), additional_headers=headers) as ws:
        assert (await runs(ws, "exec-before"))["type"] == "execution_complete"
        for _ in range(2):  # confirmed, then trusted without asking Redis (pings count nothing)
            await ws.send(json.dumps({"type": "ping", "timestamp": 1}))
            assert json.loads(await ws.recv()) == {"type": "pong", "timestamp": 1}
        assert (await user_api.delete(f"/user/apikeys/{key_id}")).status_code == 200
        await ws.send(json.dumps(AFTER_REVOCATION[sent]))
        received = await asyncio.wait_for(answers_until_closed(ws), 60)  # else a hang
    assert [(m["type"], m.get("code")) for m in received] == [("error", "unauthorized")]
    assert ws.close_code == 4401


async def test_an_idle_socket_ends_when_its_token_expires(
    stack: Stack, user: dict[str, str], user_api: httpx.AsyncClient, user_sandbox: str
) -> None:
    key_id, _ = await new_key(user_api)
    secret = (stack.state_dir / "token.secret").read_text().strip().encode()
    now = int(time.time())
    claims = {"sub": user["id"], "role": "user", "kid": key_id, "iat": now, "exp": now + 3}
    token = tokens.sign(claims, secret)  # valid, but only for a few seconds
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(ws_url(stack, user_sandbox), additional_headers=headers) as ws:
        received = await asyncio.wait_for(answers_until_closed(ws), 60)
    assert [(m["type"], m.get("code")) for m in received] == [("error", "unauthorized")]
    assert ws.close_code == 4401


@pytest.mark.parametrize("junk", ["=", "A", "AA", "!", ".", "%20"])
async def test_a_token_with_junk_appended_is_refused(
    stack: Stack, user: dict[str, str], junk: str
) -> None:
    async with httpx.AsyncClient(base_url=stack.api_url) as anonymous:
        minted = await anonymous.post(
            "/auth/token", headers={"Authorization": f"Bearer {user['key']}"}
        )
        token = minted.json()["token"]
        assert (
            await anonymous.get("/user", headers={"Authorization": f"Bearer {token}"})
        ).is_success
        tampered = {"Authorization": f"Bearer {token}{junk}"}
        assert (await anonymous.get("/user", headers=tampered)).status_code == 401


async def test_a_user_holds_a_limited_number_of_keys(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    made = await client.post("/users", json={"username": f"keys-{secrets.token_hex(4)}"})
    headers = {"Authorization": f"Bearer {made.json()['apiKey']}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as hoarder:
        created = [(await hoarder.post("/user/apikeys", json={})).status_code for _ in range(19)]
        assert created == [201] * 19, "20 live keys, counting the first"
        refused = await hoarder.post("/user/apikeys", json={})
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "conflict"
        assert "20" in refused.json()["error"]["message"]
        last = (await hoarder.get("/user/apikeys")).json()["apiKeys"][-1]["id"]
        assert (await hoarder.delete(f"/user/apikeys/{last}")).status_code == 200
        assert (await hoarder.post("/user/apikeys", json={})).status_code == 201


def terminal_url(stack: Stack, sandbox_id: str) -> str:
    return f"{stack.api_url.replace('http://', 'ws://')}/sandboxes/{sandbox_id}/terminal"


async def test_revoking_a_key_ends_the_terminal_sockets_it_opened(
    stack: Stack, user_api: httpx.AsyncClient, user_sandbox: str
) -> None:
    key_id, key = await new_key(user_api)
    headers = {"Authorization": f"Bearer {key}"}
    url = terminal_url(stack, user_sandbox)
    async with websockets.connect(url, additional_headers=headers) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        assert (await user_api.delete(f"/user/apikeys/{key_id}")).status_code == 200
        async with asyncio.timeout(60):  # a bound: the terminal re-checks every 10 s
            received = await answers_until_closed(ws)
    errors = [(m["type"], m.get("code")) for m in received if m["type"] != "output"]
    assert errors == [("error", "unauthorized")]
    assert ws.close_code == 4401
