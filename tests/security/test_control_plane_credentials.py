"""Issue 16 item 6: any host user could reach the control plane on loopback — request
`cmd.sandbox.list` as an admin or read `llmsafespace.out.>` over NATS, log in to
PostgreSQL as superuser (`trust`), write an admin credential into Valkey. The embedded
servers now refuse a client without the stack's credentials (kept 0600 in the state dir);
the services reach them with credentials in their URLs."""

import asyncio
import json
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
import redis.asyncio as redis

from llmsafespace.contracts.bus_permissions import SERVICES
from llmsafespace.devstack import Stack


def _embedded_port(stack: Stack, server: str) -> int:
    """The loopback port of a server this stack runs itself (external ones are skipped:
    their access control is their operator's)."""
    chosen = {each.name: each for each in stack.servers.all()}[server]
    if chosen.process is None:
        pytest.skip(f"{server} is external (its URL was given): not run by this stack")
    port = urlsplit(chosen.url).port
    assert port is not None
    return port


async def test_nats_refuses_a_host_user_without_the_password(stack: Stack) -> None:
    port = _embedded_port(stack, "nats")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        assert (await reader.readline()).startswith(b"INFO ")
        connect = json.dumps({"verbose": False, "pedantic": False})
        # What an attacker would do next: read every tenant's output.
        writer.write(f"CONNECT {connect}\r\nSUB llmsafespace.out.> 1\r\nPING\r\n".encode())
        await writer.drain()
        answer = await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()
    assert answer.startswith(b"-ERR 'Authorization Violation'"), answer


async def test_postgres_refuses_a_host_user_without_the_password(stack: Stack) -> None:
    port = _embedded_port(stack, "postgres")
    with pytest.raises(
        (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)
    ):
        await asyncpg.connect(
            host="127.0.0.1", port=port, user="postgres", password="", database="llmsafespace"
        )


async def test_valkey_refuses_writes_without_auth(stack: Stack) -> None:
    port = _embedded_port(stack, "redis")
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        with pytest.raises(redis.AuthenticationError):
            await client.set("apikey:forged", "admin")
    finally:
        await client.aclose()


def test_the_credentials_are_readable_by_their_owner_only(stack: Stack) -> None:
    state_dir = Path(stack.state_dir)
    embedded = {each.name for each in stack.servers.all() if each.process is not None}
    for server, variable in (("postgres", "DATABASE_URL"), ("redis", "REDIS_URL")):
        if server in embedded:
            password = state_dir / f"{server}.password"
            assert password.stat().st_mode & 0o777 == 0o600, password
            assert password.read_text().strip() in stack.env[variable]
    if "nats" in embedded:
        users = state_dir / "nats-users"
        assert users.stat().st_mode & 0o777 == 0o700
        for service in SERVICES:
            password = users / f"{service}.password"
            assert password.stat().st_mode & 0o777 == 0o600, password
            assert f"{service}:{password.read_text().strip()}@" in stack.nats_url(service)
