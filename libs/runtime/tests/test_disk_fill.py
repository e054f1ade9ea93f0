"""Filling a sandbox's disk ends in ENOSPC, not in memory pinned until delete: the
workspace is disk-backed and /tmp, /dev/shm are a share of the memory limit (issue 16,
item 5)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llmsafespace.runtime import AgentClient, Handle, RuntimeSpec
from llmsafespace.runtime.local import LocalDriver, gvisor

MEMORY = 512 * 2**20
STORAGE = 2**30


@pytest.fixture(scope="module", params=["standard", "high"])
async def sandbox(driver: LocalDriver, request: pytest.FixtureRequest) -> AsyncIterator[Handle]:
    level = request.param
    if level == "high" and not gvisor.installed():
        pytest.skip("host feature: gVisor (runsc) is not installed")
    spec = RuntimeSpec(
        runtime_id=f"fill-{level}",
        memory_bytes=MEMORY,
        storage_bytes=STORAGE,
        security_level=level,
    )
    handle = await driver.create(spec)
    yield handle
    await driver.destroy(handle.runtime_id)


@pytest.fixture
async def client(sandbox: Handle) -> AsyncIterator[AgentClient]:
    client = await AgentClient.connect(sandbox.endpoint, sandbox.token)
    yield client
    await client.close()


@pytest.mark.parametrize("where", ["/workspace", "/tmp", "/dev/shm"])
async def test_writing_more_than_the_disk_ends_in_enospc_and_the_agent_lives(
    client: AgentClient, where: str
) -> None:
    fill = f"dd if=/dev/zero of={where}/fill bs=1M count=2048 2>&1; rm -f {where}/fill"
    result = await client.run_command(fill, timeout=120)
    assert "No space left on device" in result.stdout or "File too large" in result.stdout
    assert (await client.run_command("echo alive", timeout=10)).stdout == "alive\n"


@pytest.mark.parametrize("where", ["/tmp", "/dev/shm"])
async def test_a_flood_of_empty_files_ends_in_enospc_and_the_agent_lives(
    client: AgentClient, sandbox: Handle, where: str
) -> None:
    """Each file costs kernel memory no process holds: unbounded, 600,000 of them under a
    256 Mi limit left the agent the largest process for the OOM killer (the sandbox lost)."""
    if sandbox.runtime_id.endswith("high"):
        pytest.skip("gVisor's tmpfs is memory of its own sentry")
    flood = (
        "import os\n"
        "made = 0\n"
        "try:\n"
        "    for made in range(2_000_000):\n"
        f"        os.close(os.open(f'{where}/f{{made}}', os.O_CREAT | os.O_WRONLY))\n"
        "except OSError as error:\n"
        "    print(error.strerror, made)\n"
    )
    result = await client.run_code(flood, timeout=120)
    assert result.stdout.startswith("No space left on device"), result
    assert 0 < int(result.stdout.split()[-1]) < MEMORY // 4096, "bounded by the mount's inodes"
    assert (
        await client.run_command(f"rm -rf {where}/*; echo alive", timeout=60)
    ).stdout == "alive\n"
