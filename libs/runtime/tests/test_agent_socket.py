"""What a sandbox can do to the client's connection to its agent (issue 16, item 2):
nothing that makes the client connect elsewhere, send its token, or buffer a huge frame."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from llmsafespace.agent.protocol import encode, read_frame
from llmsafespace.runtime import AgentClient, AgentUnavailable, Handle, RuntimeSpec
from llmsafespace.runtime.agent_client import KEPT_OUTPUT
from llmsafespace.runtime.local import LocalConfig, LocalDriver, gvisor

TOKEN = "client-token"


@pytest.fixture
def run_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


class Listener:
    """A Unix socket server that records what each connection sent."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.client_left = asyncio.Event()
        self.reply: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.received.append(await reader.read(4096))
        for data in self.reply:
            writer.write(data)
        await writer.drain()
        while await reader.read(4096):
            pass
        self.client_left.set()
        writer.close()


@pytest.fixture
async def host_socket() -> AsyncIterator[tuple[str, Listener]]:
    directory = tempfile.mkdtemp(dir="/tmp")
    listener = Listener()
    path = os.path.join(directory, "host-service.sock")
    server = await asyncio.start_unix_server(listener.handle, path=path)
    yield path, listener
    server.close()
    shutil.rmtree(directory, ignore_errors=True)


async def test_a_symlinked_agent_socket_is_refused_before_anything_is_sent(
    run_dir: Path, host_socket: tuple[str, Listener]
) -> None:
    target, listener = host_socket
    (run_dir / "agent.sock").symlink_to(target)
    with pytest.raises(AgentUnavailable):
        await AgentClient.connect(f"unix://{run_dir}/agent.sock", TOKEN, timeout=2)
    assert listener.received == []


async def test_a_socket_in_a_directory_others_can_write_is_refused(
    run_dir: Path, host_socket: tuple[str, Listener]
) -> None:
    path, listener = host_socket
    os.chmod(os.path.dirname(path), 0o777)
    with pytest.raises(AgentUnavailable):
        await AgentClient.connect(f"unix://{path}", TOKEN, timeout=2)
    assert listener.received == []


async def test_a_listener_that_does_not_own_the_socket_is_refused(
    host_socket: tuple[str, Listener],
) -> None:
    path, listener = host_socket
    os.chown(path, 4242, 4242)  # owned by one uid, served by another (root)
    with pytest.raises(AgentUnavailable):
        await AgentClient.connect(f"unix://{path}", TOKEN, timeout=2)
    assert listener.received == []


async def test_a_fake_agent_announcing_a_huge_frame_is_cut_off_unread(
    host_socket: tuple[str, Listener],
) -> None:
    path, listener = host_socket
    huge = encode({"id": 1, "type": "output"})[4:]
    listener.reply = [
        encode({"ok": True}),
        len(huge).to_bytes(4, "big") + huge[:-1] + b',"bodyLen":805306368}',
    ]
    client = await AgentClient.connect(f"unix://{path}", TOKEN, timeout=2)
    await listener.client_left.wait()  # the client hung up instead of waiting for 768 MiB
    assert client.closed
    with pytest.raises(AgentUnavailable):
        await client.ping()


async def test_a_fake_agent_announcing_a_huge_header_is_cut_off_unread(
    host_socket: tuple[str, Listener],
) -> None:
    path, listener = host_socket
    listener.reply = [encode({"ok": True}), (768 * 2**20).to_bytes(4, "big")]
    client = await AgentClient.connect(f"unix://{path}", TOKEN, timeout=2)
    await listener.client_left.wait()
    assert client.closed


@pytest.fixture(scope="module", params=["standard", "high"])
async def sandbox(driver: LocalDriver, request: pytest.FixtureRequest) -> AsyncIterator[Handle]:
    level = request.param
    if level == "high" and not gvisor.installed():
        pytest.skip("host feature: gVisor (runsc) is not installed")
    handle = await driver.create(RuntimeSpec(runtime_id=f"sock-{level}", security_level=level))
    yield handle
    await driver.destroy(handle.runtime_id)


@pytest.fixture
async def client(sandbox: Handle) -> AsyncIterator[AgentClient]:
    client = await AgentClient.connect(sandbox.endpoint, sandbox.token)
    yield client
    await client.close()


SIGNAL_PROBE = """
import os, signal
agent = os.getppid()  # run by exec: the agent is the parent
for name, target in [("pid", agent), ("group", -os.getpgid(agent)), ("all", -1)]:
    try:
        os.kill(target, signal.SIGSTOP)
        print(name + "=sent")
    except OSError as exc:
        print(name + "=" + (exc.strerror or ""))
"""


async def test_sandbox_code_cannot_stop_or_kill_its_agent(client: AgentClient) -> None:
    denied = "Operation not permitted"
    result = await client.run_command(f"exec python3 -c '{SIGNAL_PROBE}'", timeout=10)
    probes = ("pid", "group", "all")
    assert result.stdout.splitlines() == [f"{name}={denied}" for name in probes]
    result = await client.run_command("kill -STOP $PPID", timeout=10)
    assert (result.exit_code, denied in result.stderr) == (1, True)
    await client.ping()
    assert (await client.run_command("echo alive", timeout=10)).stdout == "alive\n"


async def test_sandbox_code_cannot_replace_or_link_the_agent_socket(
    client: AgentClient, sandbox: Handle
) -> None:
    run = "/run/llmsafespace"
    attacks = [
        f"mv {run}/agent.sock {run}/old",
        f"rm -f {run}/agent.sock",
        f"ln -s / {run}/link",
        f"python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('{run}/x.sock')\"",
    ]
    for attack in attacks:
        result = await client.run_command(attack, timeout=10)
        assert result.exit_code != 0, attack
        assert "Permission denied" in result.stderr, attack
    path = sandbox.endpoint.removeprefix("unix://")
    assert stat.S_ISSOCK(os.lstat(path).st_mode)
    assert sorted(os.listdir(os.path.dirname(path))) == ["agent.sock"]


async def test_pid_1_shows_no_host_path(client: AgentClient, config: LocalConfig) -> None:
    result = await client.run_command("tr '\\0' ' ' < /proc/1/cmdline", timeout=10)
    assert result.exit_code == 0
    assert str(config.runtime_dir) not in result.stdout


def test_the_recorded_state_with_the_token_is_readable_by_root_only(
    sandbox: Handle, config: LocalConfig
) -> None:
    meta = config.runtime_dir / "sandboxes" / sandbox.runtime_id / "meta.json"
    assert stat.S_IMODE(meta.stat().st_mode) == 0o600


async def test_a_sandbox_whose_agent_dies_is_reported_at_once(
    driver: LocalDriver, config: LocalConfig
) -> None:
    dying = await driver.create(RuntimeSpec(runtime_id="dies"))
    ended = await driver.create(RuntimeSpec(runtime_id="ended"))
    failures = driver.failures()
    first = asyncio.ensure_future(anext(failures))
    try:
        await driver.destroy(ended.runtime_id)  # destroyed by us: not a failure
        meta = (config.runtime_dir / "sandboxes" / dying.runtime_id / "meta.json").read_text()
        os.kill(int(meta.split('"pid":')[1].split(",")[0]), 9)  # as the OOM killer would
        failure = await first
        assert failure.runtime_id == dying.runtime_id
        assert "agent exited" in failure.reason
        assert await driver.failure(dying.runtime_id) == failure.reason  # as reconcile sees it
    finally:
        first.cancel()
        await failures.aclose()
        await driver.destroy(dying.runtime_id)


async def test_a_flood_of_output_is_passed_on_but_not_kept_whole(run_dir: Path) -> None:
    chunk = "x" * 2**16

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_frame(reader)  # hello
        writer.write(encode({"ok": True}))
        request, _ = await read_frame(reader)
        for _ in range(64):  # 4 MiB of stdout
            writer.write(
                encode({"id": request["id"], "type": "output", "stream": "stdout", "data": chunk})
            )
            await writer.drain()
        result = {"status": "completed", "exitCode": 0, "endedBy": "exit"}
        writer.write(encode({"id": request["id"], "type": "result", **result}))
        await reader.read()  # until the client closes
        writer.close()
        await writer.wait_closed()

    path = run_dir / "agent.sock"
    server = await asyncio.start_unix_server(flood, path=str(path))
    seen = 0

    async def on_output(stream: str, text: str) -> None:
        nonlocal seen
        seen += len(text)

    try:
        client = await AgentClient.connect(f"unix://{path}", TOKEN, timeout=2)
        result = await client.run_command("yes", timeout=30, on_output=on_output)
        await client.close()
    finally:
        server.close()
        await server.wait_closed()
    assert seen == 64 * len(chunk)
    assert len(result.stdout) == KEPT_OUTPUT


async def test_a_fake_agent_ending_with_a_malformed_result_makes_the_agent_unavailable(
    run_dir: Path,
) -> None:
    async def malformed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_frame(reader)  # hello
        writer.write(encode({"ok": True}))
        request, _ = await read_frame(reader)
        writer.write(encode({"id": request["id"], "type": "result", "exitCode": "many"}))
        await reader.read()  # until the client closes
        writer.close()
        await writer.wait_closed()

    path = run_dir / "agent.sock"
    server = await asyncio.start_unix_server(malformed, path=str(path))
    try:
        client = await AgentClient.connect(f"unix://{path}", TOKEN, timeout=2)
        with pytest.raises(AgentUnavailable, match="malformed result"):
            await client.run_code("1", timeout=30)
        await client.close()
    finally:
        server.close()
        await server.wait_closed()
