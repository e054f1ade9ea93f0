"""Issue 16 item 6: every service and the gateway logged in to NATS as one user allowed
everything, so whoever held that password (any service, or anything reading its
environment) could request `cmd.sandbox.list` as an admin or read every tenant's output.
Now each service has its own user, allowed only the subjects `contracts.bus_permissions`
grants it: the server refuses anything else with a permissions violation."""

import asyncio
import json
from urllib.parse import urlsplit

import nats
import pytest
from nats.aio.client import Client as NatsClient

from llmsafespace.contracts import subjects
from llmsafespace.contracts.bus_permissions import SERVICES, inbox_prefix
from llmsafespace.devstack import Stack

VIOLATION_WAIT = 30.0  # a bound on waiting for the server's answer, not a measurement

# (service, "publish" or "subscribe", subject, queue group)
REFUSED = [
    ("audit-svc", "publish", subjects.SANDBOX_CREATE, ""),
    ("exec-svc", "publish", subjects.SANDBOX_LIST, ""),
    ("warmpool-svc", "publish", subjects.SANDBOX_LIST, ""),
    ("sandbox-svc", "publish", subjects.SANDBOX_LIST, ""),
    ("audit-svc", "publish", subjects.SANDBOX_LIST, ""),
    ("api-gateway", "subscribe", subjects.EXEC_RUN, subjects.EXEC_QUEUE),
    ("api-gateway", "subscribe", subjects.SANDBOX_CREATE, subjects.SANDBOX_QUEUE),
    ("exec-svc", "subscribe", subjects.AUDIT_QUERY, subjects.AUDIT_QUEUE),
    ("sandbox-svc", "subscribe", subjects.OUTPUT_ALL, ""),
    ("audit-svc", "subscribe", subjects.OUTPUT_ALL, ""),
    ("audit-svc", "subscribe", inbox_prefix("api-gateway") + ".>", ""),
    ("exec-svc", "subscribe", "_INBOX.>", ""),
    ("api-gateway", "publish", subjects.sandbox_event("sb-forged00000000", "terminated"), ""),
    ("warmpool-svc", "publish", f"$JS.API.STREAM.MSG.GET.{subjects.OUTPUT_STREAM}", ""),
    ("sandbox-svc", "publish", f"$JS.API.STREAM.DELETE.{subjects.EVENTS_STREAM}", ""),
]


def _embedded_nats(stack: Stack) -> None:
    if stack.servers.nats.process is None:
        pytest.skip("NATS is external (NATS_URL was given): its users are its operator's")


async def _refusal(stack: Stack, service: str, action: str, subject: str, queue: str) -> str:
    """Connect as `service`, try the action, and return the server's refusal."""
    refused: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_error(error: Exception) -> None:
        if not refused.done():
            refused.set_result(str(error))

    connection: NatsClient = await nats.connect(
        **stack.nats_options(service), error_cb=on_error, allow_reconnect=False
    )
    try:
        if action == "publish":
            await connection.publish(subject, b"{}")
        else:
            await connection.subscribe(subject, queue=queue)
        await connection.flush()
        async with asyncio.timeout(VIOLATION_WAIT):
            return await refused
    finally:
        await connection.close()


@pytest.mark.parametrize(("service", "action", "subject", "queue"), REFUSED)
async def test_a_service_user_is_refused_what_its_service_does_not_do(
    stack: Stack, service: str, action: str, subject: str, queue: str
) -> None:
    _embedded_nats(stack)
    refusal = await _refusal(stack, service, action, subject, queue)
    kind = "publish" if action == "publish" else "subscription"
    assert f'permissions violation for {kind} to "{subject.lower()}"' in refusal.lower(), refusal


async def test_only_the_gateway_gets_an_answer_to_a_sandbox_list(stack: Stack) -> None:
    """The same request, as each user: the gateway's is answered, the others' refused."""
    _embedded_nats(stack)
    for service in SERVICES:
        if service == "api-gateway":
            continue
        refusal = await _refusal(stack, service, "publish", subjects.SANDBOX_LIST, "")
        assert "permissions violation for publish" in refusal.lower(), (service, refusal)
    gateway = await nats.connect(**stack.nats_options("api-gateway"))
    try:
        reply = await gateway.request(subjects.SANDBOX_LIST, b"{}", timeout=VIOLATION_WAIT)
    finally:
        await gateway.close()
    assert reply.data  # answered (an envelope: the request carries no caller)


async def test_a_service_user_with_a_wrong_password_is_refused(stack: Stack) -> None:
    _embedded_nats(stack)
    port = urlsplit(stack.nats_url("audit-svc")).port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert (await reader.readline()).startswith(b"INFO ")
        connect = json.dumps({"verbose": False, "user": "audit-svc", "pass": "not-it"})
        writer.write(f"CONNECT {connect}\r\nPING\r\n".encode())
        await writer.drain()
        answer = await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()
    assert answer.startswith(b"-ERR 'Authorization Violation'"), answer
