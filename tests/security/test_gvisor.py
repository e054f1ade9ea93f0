"""``securityLevel: high`` through the public API: the sandbox runs under gVisor, and hostile
code inside it fails the same escapes as at the standard level.

Where gVisor (Debian's ``runsc``) is not installed, "high" must be refused with 400 and
what to install: never a silent downgrade to the standard level.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from .probes import (
    assert_host_files_unreadable,
    assert_stack_unreachable,
    assert_system_paths_unwritable,
    create,
    run,
    value,
    witness_answers,
)

pytestmark = pytest.mark.stack

RUNSC = "/usr/bin/runsc"
NO_GVISOR = (
    f"host feature: gVisor is not installed ({RUNSC} missing): scripts/install-gvisor.sh "
    "(run by setup.sh) installs Debian's runsc where apt offers it"
)
needs_gvisor = pytest.mark.skipif(not os.access(RUNSC, os.X_OK), reason=NO_GVISOR)
EPERM = 1


@pytest.fixture(scope="module")
async def high(client: httpx.AsyncClient) -> AsyncIterator[str]:
    if not os.access(RUNSC, os.X_OK):
        pytest.skip(NO_GVISOR)
    created = await create(client, securityLevel="high")
    assert created.status_code == 201, created.text
    assert created.json()["securityLevel"] == "high"
    sandbox_id: str = created.json()["id"]
    yield sandbox_id
    await client.delete(f"/sandboxes/{sandbox_id}")


@pytest.mark.skipif(os.access(RUNSC, os.X_OK), reason="gVisor is installed here")
async def test_without_gvisor_high_is_refused_with_what_to_install(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, securityLevel="high")
    assert created.status_code == 400, created.text
    assert "apt-get install runsc" in created.json()["error"]["message"]


async def test_a_high_sandbox_runs_under_gvisor_and_misses_no_protection(
    client: httpx.AsyncClient, high: str
) -> None:
    body = await run(client, high, "cat /proc/version; dmesg", kind="command")
    assert body["exitCode"] == 0, body
    assert "Starting gVisor" in str(body["stdout"]), body
    status = await client.get(f"/sandboxes/{high}/status")
    assert status.status_code == 200, status.text
    assert status.json()["runtimeAlive"] is True
    assert status.json()["missingProtections"] == []


async def test_a_standard_sandbox_is_not_under_gvisor_and_misses_no_protection(
    client: httpx.AsyncClient, witness: str
) -> None:
    body = await run(client, witness, "dmesg; cat /proc/version", kind="command")
    assert "gVisor" not in str(body["stdout"])
    status = await client.get(f"/sandboxes/{witness}/status")
    assert status.json()["missingProtections"] == []


@needs_gvisor
async def test_high_with_network_access_is_refused_not_downgraded(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, securityLevel="high", networkAccess={"enabled": True})
    assert created.status_code == 400, created.text
    assert "networkAccess" in created.json()["error"]["message"]


async def test_host_files_the_repo_and_other_workspaces_are_unreadable(
    client: httpx.AsyncClient, high: str, witness: str, stack
) -> None:
    await assert_host_files_unreadable(client, high, witness, Path(stack.runtime_dir))


async def test_usr_etc_and_proc_sys_are_not_writable(client: httpx.AsyncClient, high: str) -> None:
    await assert_system_paths_unwritable(client, high)


async def test_stack_services_on_loopback_are_unreachable(
    client: httpx.AsyncClient, high: str, stack
) -> None:
    await assert_stack_unreachable(client, high, stack)


async def test_no_capabilities_no_host_pids_and_no_secrets_in_pid_1(
    client: httpx.AsyncClient, high: str, stack
) -> None:
    code = f"""
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('Cap')]
pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
try:
    os.kill({os.getpid()}, 0)
    signalled = "ok"
except OSError as exc:
    signalled = type(exc).__name__
def errno_of(*args):
    ctypes.set_errno(0)
    return [libc.syscall(*[ctypes.c_long(a) for a in args]), ctypes.get_errno()]
mount = errno_of(165, 0, 0, 0, 0, 0)
ptrace = errno_of(101, 16, 1, 0, 0)  # PTRACE_ATTACH to pid 1, the agent
environ = open('/proc/1/environ', 'rb').read().decode(errors='replace')
json.dumps([caps, max(pids), signalled, mount, ptrace, environ])
"""
    found = await value(client, high, code)
    assert isinstance(found, list)
    caps, highest, signalled, mount, ptrace, environ = found
    assert caps, "the status file lists capability sets"
    assert set(caps) == {"0000000000000000"}, caps
    assert highest < 100
    assert signalled != "ok"
    assert mount == [-1, EPERM]
    assert ptrace == [-1, EPERM]
    for secret in (stack.admin_key, stack.env["DATABASE_URL"], "DATABASE_URL", "NATS_URL"):
        assert secret not in environ


async def test_a_memory_hog_ends_only_its_own_sandbox(
    client: httpx.AsyncClient, high: str, witness: str
) -> None:
    """The host's memory cgroup holds gVisor's kernel and the sandbox's processes together:
    past the limit the whole high sandbox ends, never the host or another sandbox."""
    created = await create(client, securityLevel="high", resources={"memory": "192Mi"})
    assert created.status_code == 201, created.text
    hog = created.json()["id"]
    try:
        response = await client.post(
            f"/sandboxes/{hog}/execute",
            json={"type": "code", "content": "hog = bytearray(400 * 2**20)", "timeout": 60},
        )
        assert response.status_code != 200 or response.json()["status"] != "completed"
        assert (await run(client, high, "'alive'"))["result"] == "'alive'"
        await witness_answers(client, witness)
    finally:
        await client.delete(f"/sandboxes/{hog}")
