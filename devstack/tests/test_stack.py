"""The Stack with its real servers and no services (the services are tested from tests/)."""

import socket
import stat
from pathlib import Path

import pytest

from llmsafespace.devstack import AlreadyRunningError, Stack, StackError
from llmsafespace.devstack.__main__ import write_env_file
from llmsafespace.devstack.services import SERVICES, replica_count

from .processes_left import processes_mentioning


def servers_only(state_dir: Path) -> Stack:
    return Stack(state_dir, api_port=0, services=(), environ={})


async def test_stack_starts_its_servers_and_stops_leaving_no_process(state_dir: Path) -> None:
    stack = servers_only(state_dir)
    await stack.start()
    try:
        assert set(stack.env) == {"NATS_URL", "DATABASE_URL", "REDIS_URL", "LOG_FORMAT"}
        assert processes_mentioning(state_dir)
    finally:
        await stack.stop()
    assert processes_mentioning(state_dir) == []


async def test_admin_key_is_stable_across_restarts(state_dir: Path) -> None:
    first = servers_only(state_dir)
    await first.start()
    await first.stop()
    second = servers_only(state_dir)
    await second.start()
    await second.stop()
    assert first.admin_key.startswith("lsp_")
    assert first.admin_key == second.admin_key
    assert stat.S_IMODE((state_dir / "admin.key").stat().st_mode) == 0o600


async def test_a_second_stack_on_the_same_state_dir_is_refused(state_dir: Path) -> None:
    first = servers_only(state_dir)
    await first.start()
    try:
        with pytest.raises(AlreadyRunningError, match=r"already running from .* \(pid \d+\)"):
            await servers_only(state_dir).start()
        assert first.servers.redis.process is not None
        assert first.servers.redis.process.poll() is None
    finally:
        await first.stop()


async def test_a_busy_api_port_is_refused(state_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        stack = Stack(state_dir, api_port=port, services=SERVICES, environ={})
        with pytest.raises(StackError, match=f"port {port} .* already in use"):
            await stack.start()
    assert processes_mentioning(state_dir) == []


async def test_env_file_holds_the_url_and_key_only(state_dir: Path) -> None:
    stack = servers_only(state_dir)
    await stack.start()
    await stack.stop()
    write_env_file(state_dir / "env", stack)
    lines = (state_dir / "env").read_text().splitlines()
    assert lines == [
        f"LLMSAFESPACE_API_URL={stack.api_url}",
        f"LLMSAFESPACE_API_KEY={stack.admin_key}",
    ]
    assert stat.S_IMODE((state_dir / "env").stat().st_mode) == 0o600


def test_replicas_come_from_the_service_variable_then_the_common_one() -> None:
    gateway, exec_svc = SERVICES[0], SERVICES[3]
    assert (gateway.name, exec_svc.name) == ("api-gateway", "exec-svc")
    environ = {"LLMSAFESPACE_REPLICAS": "2", "LLMSAFESPACE_REPLICAS_EXEC_SVC": "3"}
    assert [replica_count(spec, environ) for spec in (gateway, exec_svc)] == [2, 3]
    assert replica_count(gateway, {}) == 1
    for bad in ("0", "-1", "two", "99"):
        with pytest.raises(StackError, match="LLMSAFESPACE_REPLICAS"):
            replica_count(gateway, {"LLMSAFESPACE_REPLICAS": bad})
