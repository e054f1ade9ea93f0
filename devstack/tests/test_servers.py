"""Each embedded server starts, answers its own protocol, and stops leaving nothing behind."""

import asyncio
import json
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import nats
import pytest
import redis.asyncio as redis

from llmsafespace.contracts import subjects
from llmsafespace.contracts.bus_permissions import SERVICES, inbox_prefix
from llmsafespace.devstack.nats_server import NatsServer
from llmsafespace.devstack.postgres_server import PostgresServer
from llmsafespace.devstack.redis_server import RedisServer
from llmsafespace.devstack.servers import ExternalServer, choose_servers

from .processes_left import processes_mentioning


async def test_nats_server_serves_jetstream_and_stops_cleanly(state_dir: Path) -> None:
    server = NatsServer(state_dir, state_dir / "logs")
    await server.start()
    try:
        assert server.url_for("exec-svc").startswith("nats://exec-svc:")
        options = {"inbox_prefix": inbox_prefix("sandbox-svc")}
        sandbox = await nats.connect(server.url_for("sandbox-svc"), **options)
        gateway = await nats.connect(server.url_for("api-gateway"))
        try:
            # A command only the gateway may send and only sandbox-svc may hear.
            subscription = await sandbox.subscribe(subjects.SANDBOX_GET)
            await sandbox.flush()
            await gateway.publish(subjects.SANDBOX_GET, b"hello")
            await gateway.flush()
            message = await subscription.next_msg(timeout=30)
            assert message.data == b"hello"
            js = sandbox.jetstream()
            await js.add_stream(name=subjects.EVENTS_STREAM, subjects=[subjects.EVENTS_ALL])
            info = await js.stream_info(subjects.EVENTS_STREAM)
            assert info.config.name == subjects.EVENTS_STREAM
        finally:
            await sandbox.close()
            await gateway.close()
    finally:
        await server.stop()
    assert server.process is not None
    assert server.process.returncode is not None
    assert processes_mentioning(state_dir) == []


async def test_redis_server_answers_ping_and_stops_cleanly(state_dir: Path) -> None:
    server = RedisServer(state_dir, state_dir / "logs")
    await server.start()
    try:
        client = redis.Redis.from_url(server.url)
        try:
            assert await client.ping() is True
        finally:
            await client.aclose()
    finally:
        await server.stop()
    assert processes_mentioning(state_dir) == []


async def test_postgres_server_answers_and_stops_cleanly(state_dir: Path) -> None:
    server = PostgresServer(state_dir, state_dir / "logs")
    await server.start()
    try:
        assert server.url.endswith("/llmsafespace")
        connection = await asyncpg.connect(server.url)
        try:
            assert await connection.fetchval("SELECT 1") == 1
        finally:
            await connection.close()
    finally:
        await server.stop()
    assert processes_mentioning(state_dir) == []


async def test_postgres_data_persists_across_a_restart(state_dir: Path) -> None:
    first = PostgresServer(state_dir, state_dir / "logs")
    await first.start()
    try:
        connection = await asyncpg.connect(first.url)
        await connection.execute("CREATE TABLE kept (value text)")
        await connection.execute("INSERT INTO kept VALUES ('still here')")
        await connection.close()
    finally:
        await first.stop()

    second = PostgresServer(state_dir, state_dir / "logs")
    await second.start()
    try:
        connection = await asyncpg.connect(second.url)
        assert await connection.fetchval("SELECT value FROM kept") == "still here"
        await connection.close()
    finally:
        await second.stop()


def test_urls_in_the_environment_replace_embedded_servers(state_dir: Path) -> None:
    servers = choose_servers(
        state_dir, state_dir / "logs", {"REDIS_URL": "redis://elsewhere:6379/0"}
    )
    assert servers.redis == ExternalServer("redis", "redis://elsewhere:6379/0")
    assert isinstance(servers.nats, NatsServer)
    assert isinstance(servers.postgres, PostgresServer)


async def test_nats_refuses_a_client_without_the_password(state_dir: Path) -> None:
    server = NatsServer(state_dir, state_dir / "logs")
    await server.start()
    try:
        port = urlsplit(server.url).port
        assert port is not None
        for credentials in ({}, {"user": "api-gateway", "pass": "wrong"}):
            answer = await _nats_connect_answer(port, credentials)
            assert answer.startswith(b"-ERR 'Authorization Violation'"), answer
        assert (state_dir / "nats" / "nats.conf").stat().st_mode & 0o777 == 0o600
        for service in SERVICES:
            password = server.password_path(service)
            assert password.stat().st_mode & 0o777 == 0o600
            assert password.read_text().strip() not in _cmdline(server)
    finally:
        await server.stop()


async def test_redis_refuses_commands_without_auth(state_dir: Path) -> None:
    server = RedisServer(state_dir, state_dir / "logs")
    await server.start()
    try:
        port = urlsplit(server.url).port
        client = redis.Redis(host="127.0.0.1", port=port)
        try:
            with pytest.raises(redis.AuthenticationError):
                await client.set("admin-key", "forged")
        finally:
            await client.aclose()
        assert (state_dir / "redis.password").stat().st_mode & 0o777 == 0o600
        assert (state_dir / "redis.password").read_text().strip() not in _cmdline(server)
    finally:
        await server.stop()


async def test_postgres_refuses_a_tcp_login_without_the_password(state_dir: Path) -> None:
    server = PostgresServer(state_dir, state_dir / "logs")
    await server.start()
    try:
        port = urlsplit(server.url).port
        for password in (None, "wrong"):
            with pytest.raises(
                (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)
            ):
                await asyncpg.connect(
                    host="127.0.0.1",
                    port=port,
                    user="postgres",
                    password=password,
                    database="llmsafespace",
                )
        assert (state_dir / "postgres.password").stat().st_mode & 0o777 == 0o600
    finally:
        await server.stop()


async def _nats_connect_answer(port: int, credentials: dict[str, str]) -> bytes:
    """What the server answers a client's CONNECT (+ PING), in the raw protocol."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        info = await reader.readline()
        assert info.startswith(b"INFO ")
        connect = json.dumps({"verbose": False, "pedantic": False, **credentials})
        writer.write(f"CONNECT {connect}\r\nPING\r\n".encode())
        await writer.drain()
        return await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()


def _cmdline(server: NatsServer | RedisServer) -> str:
    """What any host user sees of the server's command line in `ps`."""
    assert server.process is not None
    return Path(f"/proc/{server.process.pid}/cmdline").read_text()
