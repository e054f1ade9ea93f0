"""The local driver's confinement seen from inside and from the host: cgroups, seccomp, mounts."""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llmsafespace.runtime import AgentClient, Handle, RuntimeSpec
from llmsafespace.runtime.local import LocalConfig, LocalDriver
from llmsafespace.runtime.local.cgroups import FAVOR_MOVES, cgroup_mounts, favor_moves
from llmsafespace.runtime.local.mounts import attached_under, mounted_under

MS_REMOUNT = 32


def _uid_of(config: LocalConfig, sandbox_id: str) -> int:
    meta = (config.runtime_dir / "sandboxes" / sandbox_id / "meta.json").read_text()
    return int(meta.split('"uid":')[1].split(",")[0])


def _read(path: Path) -> str:
    return path.read_text()


@pytest.fixture(scope="module")
async def confined(driver: LocalDriver) -> AsyncIterator[Handle]:
    spec = RuntimeSpec(
        runtime_id="confined", cpu=0.5, memory_bytes=96 * 2**20, storage_bytes=16 * 2**20
    )
    handle = await driver.create(spec)
    yield handle
    await driver.destroy("confined")


@pytest.fixture
async def client(confined: Handle) -> AsyncIterator[AgentClient]:
    client = await AgentClient.connect(confined.endpoint, confined.token)
    yield client
    await client.close()


async def test_the_sandbox_cgroup_carries_the_requested_limits(
    confined: Handle, config: LocalConfig, driver: LocalDriver
) -> None:
    cgroups = config.cgroups()
    assert cgroups is not None
    dirs = cgroups.dirs(_uid_of(config, "confined"))
    if cgroups.version.value == "v1":
        assert _read(dirs["memory"] / "memory.limit_in_bytes").strip() == str(96 * 2**20)
        assert _read(dirs["cpu"] / "cpu.cfs_quota_us").strip() == "50000"
    assert _read(dirs["pids"] / "pids.max").strip() == str(config.pids_per_sandbox)
    assert _read(dirs["pids"] / "cgroup.procs").split(), "the sandbox's processes are inside"


def test_cgroup_moves_are_favoured_so_a_sandbox_start_waits_for_no_rcu_grace_period(
    driver: LocalDriver,
) -> None:
    cgroup2 = [(point, options) for point, kind, options in cgroup_mounts() if kind == "cgroup2"]
    if not cgroup2:
        pytest.skip("this host mounts no cgroup2 hierarchy")
    point, options = cgroup2[0]
    assert FAVOR_MOVES in options, "the driver's start remounted it"
    # Drop the option (keeping the others), as a host boots, and let the driver's call put
    # it back.
    kept = ",".join(sorted(options - {FAVOR_MOVES, "rw", "ro"})).encode()
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.mount(None, point.encode(), None, MS_REMOUNT, kept) == 0, ctypes.get_errno()
    assert all(FAVOR_MOVES not in now for at, _, now in cgroup_mounts() if at == point)
    assert favor_moves()
    assert all(FAVOR_MOVES in now for at, _, now in cgroup_mounts() if at == point)


async def test_the_workspace_is_a_size_limited_tmpfs_and_the_agent_is_confined(
    client: AgentClient, config: LocalConfig
) -> None:
    assert config.runtime_dir / "workspaces" / "confined" in mounted_under(config.runtime_dir)
    result = await client.run_command(
        "grep -E 'Seccomp:|NoNewPrivs:' /proc/self/status; ls /opt/llmsafespace/.. 2>&1; "
        "head -c 10M /dev/zero > /workspace/a; head -c 10M /dev/zero > /workspace/b; echo rc=$?",
        timeout=10,
    )
    assert "Seccomp:\t2" in result.stdout
    assert "NoNewPrivs:\t1" in result.stdout
    assert "Permission denied" in result.stdout, "landlock: / is not listable"
    assert "rc=1" in result.stdout
    assert "No space left on device" in result.stderr


async def test_destroy_removes_the_cgroup_the_mount_and_the_loop_device(
    driver: LocalDriver, config: LocalConfig
) -> None:
    await driver.create(RuntimeSpec(runtime_id="gone"))
    uid = _uid_of(config, "gone")
    cgroups = config.cgroups()
    assert cgroups is not None
    assert uid in cgroups.uids()
    state = config.runtime_dir / "sandboxes" / "gone"
    assert attached_under(state) == {state / "workspace.img"}
    await driver.destroy("gone")
    assert uid not in cgroups.uids()
    assert config.runtime_dir / "workspaces" / "gone" not in mounted_under(config.runtime_dir)
    deadline = asyncio.get_running_loop().time() + 10
    while await asyncio.to_thread(attached_under, state):  # detached after the last close
        assert asyncio.get_running_loop().time() < deadline, "its loop device stays attached"
        await asyncio.sleep(0.01)
