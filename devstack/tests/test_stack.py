"""The Stack with its real servers and no services (the services are tested from tests/)."""

import asyncio
import socket
import stat
import sys
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
        assert set(stack.env) == {"DATABASE_URL", "REDIS_URL", "LOG_FORMAT"}
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
        f"export LLMSAFESPACE_API_URL={stack.api_url}",
        f"export LLMSAFESPACE_API_KEY={stack.admin_key}",
    ]
    assert stat.S_IMODE((state_dir / "env").stat().st_mode) == 0o600
    # What the README and the examples say to do: a program started next sees the key.
    program = "import os; print(os.environ['LLMSAFESPACE_API_KEY'])"
    shell = await asyncio.create_subprocess_exec(
        *("bash", "-c", 'source "$1" && exec "$2" -c "$3"', "bash", state_dir / "env"),
        *(sys.executable, program),
        stdout=asyncio.subprocess.PIPE,
        env={},
    )
    shown, _ = await shell.communicate()
    assert shown.decode() == f"{stack.admin_key}\n"


def test_replicas_come_from_the_service_variable_then_the_common_one() -> None:
    gateway, exec_svc = SERVICES[0], SERVICES[3]
    assert (gateway.name, exec_svc.name) == ("api-gateway", "exec-svc")
    environ = {"LLMSAFESPACE_REPLICAS": "2", "LLMSAFESPACE_REPLICAS_EXEC_SVC": "3"}
    assert [replica_count(spec, environ) for spec in (gateway, exec_svc)] == [2, 3]
    assert replica_count(gateway, {}) == 1
    for bad in ("0", "-1", "two", "99"):
        with pytest.raises(StackError, match="LLMSAFESPACE_REPLICAS"):
            replica_count(gateway, {"LLMSAFESPACE_REPLICAS": bad})


async def test_servers_stop_by_themselves_when_the_devstack_is_killed(state_dir: Path) -> None:
    """kill -9 leaves the devstack no time to stop anything: its children get SIGTERM
    from the kernel (parent-death signal) and exit on their own."""
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from llmsafespace.devstack import Stack\n"
        "async def main():\n"
        "    stack = Stack(Path(sys.argv[1]), api_port=0, services=(), environ={})\n"
        "    await stack.start()\n"
        "    print('ready', flush=True)\n"
        "    await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    devstack = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(state_dir), stdout=asyncio.subprocess.PIPE
    )
    assert devstack.stdout is not None
    try:
        async with asyncio.timeout(120):
            while (line := await devstack.stdout.readline()) not in (b"ready\n", b""):
                pass  # the stack's own log lines
        assert line == b"ready\n"
        assert processes_mentioning(state_dir)
    finally:
        devstack.kill()
        await devstack.wait()
    async with asyncio.timeout(60):  # a guard against a hang, not a speed check
        while processes_mentioning(state_dir):  # noqa: ASYNC110 (no event to wait on)
            await asyncio.sleep(0.2)
