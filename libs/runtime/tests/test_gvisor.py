"""``securityLevel: high``: the agent under gVisor (runsc), with the standard level's limits,
teardown, adoption and sweep."""

from __future__ import annotations

import ast
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from llmsafespace.runtime import (
    AgentClient,
    AgentUnavailable,
    Handle,
    RuntimeSpec,
    UnsupportedSpec,
)
from llmsafespace.runtime.local import LocalConfig, LocalDriver, sweep
from llmsafespace.runtime.local.gvisor import RUNSC, installed
from llmsafespace.runtime.local.layout import Layout
from llmsafespace.runtime.local.mounts import mounted_under
from llmsafespace.runtime.local.processes import live_pids

needs_runsc = pytest.mark.skipif(
    not installed(),
    reason=f"host feature: gVisor is not installed ({RUNSC} missing): "
    "scripts/install-gvisor.sh (run by setup.sh) installs Debian's runsc where apt offers it",
)
ENOSPC = 28


def _meta_uid(config: LocalConfig, sandbox_id: str) -> int:
    meta = Layout(config.runtime_dir).read_meta(sandbox_id)
    assert meta is not None
    return meta.uid


def _fresh_runtime_dir() -> Path:
    directory = Path(tempfile.mkdtemp(dir="/tmp"))
    directory.chmod(0o755)
    return directory


def _executable(pid: int) -> str:
    try:
        return str(Path(f"/proc/{pid}/exe").resolve())
    except OSError:
        return ""


def _cgroups_of(pid: int) -> str:
    return Path(f"/proc/{pid}/cgroup").read_text()


def _is_dir(path: Path) -> bool:
    return path.is_dir()


def _cgroup_dirs(uid: int) -> list[Path]:
    return [path for path in Path("/sys/fs/cgroup").glob(f"*/llmsafespace/sb-{uid}")] + [
        path for path in Path("/sys/fs/cgroup").glob(f"llmsafespace/sb-{uid}")
    ]


@pytest.fixture(scope="module")
async def high(driver: LocalDriver) -> AsyncIterator[Handle]:
    if not installed():
        pytest.skip(str(needs_runsc.kwargs["reason"]))
    handle = await driver.create(
        RuntimeSpec(runtime_id="gv", security_level="high", storage_bytes=32 * 2**20)
    )
    yield handle
    await driver.destroy("gv")


@pytest.fixture
async def client(high: Handle) -> AsyncIterator[AgentClient]:
    client = await AgentClient.connect(high.endpoint, high.token)
    yield client
    await client.close()


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP port on the host's loopback that accepts connections."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


async def test_a_high_sandbox_runs_the_agent_under_gvisor(client: AgentClient) -> None:
    ran = await client.run_command("cat /proc/version; dmesg", timeout=30)
    assert ran.exit_code == 0, ran
    assert "Starting gVisor" in ran.stdout, ran.stdout
    assert (await client.run_code("kept = 20", timeout=30)).status == "completed"
    assert (await client.run_code("kept * 2 + 2", timeout=30)).result == "42"


async def test_its_agent_has_no_capabilities_and_sees_no_host_file(client: AgentClient) -> None:
    ran = await client.run_command(
        "grep ^Cap /proc/self/status; cat /etc/shadow; cat /proc/1/environ", timeout=30
    )
    caps = [line.split()[1] for line in ran.stdout.splitlines() if line.startswith("Cap")]
    assert caps, ran.stdout
    assert set(caps) == {"0000000000000000"}, ran.stdout
    assert "No such file" in ran.stderr
    assert "DATABASE_URL" not in ran.stdout


async def test_every_host_process_of_a_high_sandbox_is_its_uid_in_its_cgroups(
    high: Handle, config: LocalConfig
) -> None:
    uid = _meta_uid(config, "gv")
    pids = live_pids(uid)
    assert any(_executable(pid) == RUNSC for pid in pids), pids
    for pid in pids:
        assert f"sb-{uid}" in _cgroups_of(pid), pid


async def test_a_high_sandbox_cannot_reach_the_hosts_loopback(
    client: AgentClient, listener: int
) -> None:
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {listener}), timeout=2).close()\n"
        "    reached = 'ok'\n"
        "except OSError as exc:\n"
        "    reached = type(exc).__name__\n"
        "reached\n"
    )
    ran = await client.run_code(code, timeout=30)
    assert ran.status == "completed", ran
    assert ran.result is not None
    assert "ok" not in ran.result, ran.result


def _host_socket(path: Path) -> socket.socket:
    """A listening Unix socket on the host that anyone may connect to."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    path.chmod(0o777)
    return server


async def test_a_high_sandbox_cannot_connect_to_host_unix_sockets(
    client: AgentClient, config: LocalConfig
) -> None:
    with _host_socket(config.runtime_dir / "workspaces" / "gv" / "host.sock"):
        code = (
            "import socket\n"
            "probe = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            "    probe.connect('/workspace/host.sock')\n"
            "    reached = 'ok'\n"
            "except OSError as exc:\n"
            "    reached = type(exc).__name__\n"
            "reached\n"
        )
        ran = await client.run_code(code, timeout=30)
    assert ran.result == "'PermissionError'", ran
    await client.run_command("rm -f /workspace/host.sock", timeout=30)


async def test_its_workspace_and_tmp_end_in_enospc(client: AgentClient) -> None:
    code = (
        "out = {}\n"
        "for directory in ('/workspace', '/tmp'):\n"
        "    written, error = 0, None\n"
        "    try:\n"
        "        for number in range(64):\n"
        "            with open(f'{directory}/flood-{number}', 'wb') as f:\n"
        "                f.write(b'x' * 2**20)\n"
        "                written += 2**20\n"
        "    except OSError as exc:\n"
        "        error = exc.errno\n"
        "    out[directory] = [written, error]\n"
        "out\n"
    )
    ran = await client.run_code(code, timeout=60)
    assert ran.status == "completed", ran
    assert ran.result is not None
    found = ast.literal_eval(ran.result)
    for written, error in found.values():
        assert error == ENOSPC, found
        assert written <= 32 * 2**20
    await client.run_command("rm -f /workspace/flood-* /tmp/flood-*", timeout=30)


async def test_a_memory_hog_cannot_take_more_than_the_limit(
    driver: LocalDriver, config: LocalConfig, high: Handle
) -> None:
    """Under gVisor the host's memory cgroup holds the sandbox's kernel and its processes
    together: going past the limit ends the whole sandbox, never the host or a neighbour."""
    await driver.create(
        RuntimeSpec(runtime_id="gv-hog", security_level="high", memory_bytes=192 * 2**20)
    )
    uid = _meta_uid(config, "gv-hog")
    handle = await driver.inspect("gv-hog")
    assert handle is not None
    try:
        client = await AgentClient.connect(handle.endpoint, handle.token)
        try:
            ran = await client.run_code("hog = bytearray(400 * 2**20)", timeout=60)
            assert ran.status == "failed", ran
        except AgentUnavailable:
            pass  # the kernel's OOM killer ended the sandbox
        finally:
            await client.close()
        peak = [path / "memory.max_usage_in_bytes" for path in _cgroup_dirs(uid)]
        for counter in (path for path in peak if path.exists()):
            assert int(counter.read_text()) <= 192 * 2**20
        neighbour = await AgentClient.connect(high.endpoint, high.token)
        assert (await neighbour.run_code("'alive'", timeout=30)).result == "'alive'"
        await neighbour.close()
    finally:
        await driver.destroy("gv-hog")


async def test_destroy_leaves_no_process_mount_cgroup_or_runsc_state(
    driver: LocalDriver, config: LocalConfig
) -> None:
    if not installed():
        pytest.skip(str(needs_runsc.kwargs["reason"]))
    handle = await driver.create(RuntimeSpec(runtime_id="gv-doomed", security_level="high"))
    uid = _meta_uid(config, "gv-doomed")
    state = config.runtime_dir / "sandboxes" / "gv-doomed"
    assert _is_dir(state / "runsc")
    assert _cgroup_dirs(uid)
    client = await AgentClient.connect(handle.endpoint, handle.token)
    await client.run_command("sleep 60 >/dev/null 2>&1 &", timeout=10)
    await client.close()
    await driver.destroy("gv-doomed")
    await driver.destroy("gv-doomed")
    assert live_pids(uid) == []
    assert _cgroup_dirs(uid) == []
    assert not _is_dir(state)
    assert not _is_dir(config.runtime_dir / "workspaces" / "gv-doomed")
    assert not mounted_under(config.runtime_dir / "workspaces" / "gv-doomed")
    assert not (config.uid_registry_dir / str(uid)).exists()
    assert await driver.inspect("gv-doomed") is None


@needs_runsc
async def test_a_new_driver_adopts_a_high_sandbox_and_sweep_removes_it() -> None:
    directory = _fresh_runtime_dir()
    config = LocalConfig(runtime_dir=directory)
    try:
        await LocalDriver(config).create(RuntimeSpec(runtime_id="gv-kept", security_level="high"))
        uid = _meta_uid(config, "gv-kept")
        later = LocalDriver(config)
        assert [handle.runtime_id for handle in await later.list()] == ["gv-kept"]
        handle = await later.inspect("gv-kept")
        assert handle is not None
        client = await AgentClient.connect(handle.endpoint, handle.token)
        assert (await client.run_code("6 * 7", timeout=30)).result == "42"
        await client.close()
        assert sweep(directory) == 1
        assert live_pids(uid) == []
        assert _cgroup_dirs(uid) == []
        assert await later.list() == []
    finally:
        sweep(directory)
        shutil.rmtree(directory, ignore_errors=True)


@needs_runsc
async def test_high_with_network_access_is_refused_not_downgraded(driver: LocalDriver) -> None:
    with pytest.raises(UnsupportedSpec, match="networkAccess is not available with"):
        await driver.create(
            RuntimeSpec(runtime_id="gv-net", security_level="high", network_ports=(443,))
        )
    assert await driver.inspect("gv-net") is None


def test_missing_protections_are_reported_per_level(driver: LocalDriver) -> None:
    protections = driver.protections()
    assert protections["gvisor"] is installed()
    by_level = protections["missingByLevel"]
    assert isinstance(by_level, dict)
    assert by_level["standard"] == driver.missing_protections("standard") == []
    assert by_level["high"] == ([] if installed() else ["gvisor"])
