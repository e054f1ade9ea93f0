"""``securityLevel: high`` through the public API: the sandbox runs under gVisor, and hostile
code inside it fails the same escapes as at the standard level.

Where gVisor (Debian's ``runsc``) is not installed, "high" must be refused with 400 and
what to install: never a silent downgrade to the standard level.
"""

from __future__ import annotations

import ast
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = pytest.mark.stack

RUNSC = "/usr/bin/runsc"
NO_GVISOR = (
    f"gVisor is not installed ({RUNSC} missing): scripts/setup.sh installs Debian's runsc "
    "where apt offers it; `apt-cache policy runsc` shows no candidate on this host"
)
needs_gvisor = pytest.mark.skipif(not os.access(RUNSC, os.X_OK), reason=NO_GVISOR)
EPERM = 1


async def _run(
    api: httpx.AsyncClient, sandbox_id: str, content: str, kind: str = "code"
) -> dict[str, object]:
    response = await api.post(
        f"/sandboxes/{sandbox_id}/execute", json={"type": kind, "content": content, "timeout": 60}
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def _value(api: httpx.AsyncClient, sandbox_id: str, content: str) -> object:
    """Run ``content`` whose last expression is JSON-serialisable; its value."""
    body = await _run(api, sandbox_id, content + "\n")
    assert body["status"] == "completed", body
    return json.loads(ast.literal_eval(str(body["result"])))


@pytest.fixture(scope="module")
async def client(stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=90) as api:
        yield api


async def _create(api: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await api.post("/sandboxes", json={"timeout": 900, "useWarmPool": False, **body})


@pytest.fixture(scope="module")
async def high(client: httpx.AsyncClient) -> AsyncIterator[str]:
    if not os.access(RUNSC, os.X_OK):
        pytest.skip(NO_GVISOR)
    created = await _create(client, securityLevel="high")
    assert created.status_code == 201, created.text
    assert created.json()["securityLevel"] == "high"
    sandbox_id: str = created.json()["id"]
    yield sandbox_id
    await client.delete(f"/sandboxes/{sandbox_id}")


@pytest.fixture(scope="module")
async def witness(client: httpx.AsyncClient) -> AsyncIterator[str]:
    created = await _create(client)
    assert created.status_code == 201, created.text
    sandbox_id: str = created.json()["id"]
    await _run(client, sandbox_id, "open('/workspace/witness-secret', 'w').write('w1tness')")
    yield sandbox_id
    await client.delete(f"/sandboxes/{sandbox_id}")


async def _witness_answers(client: httpx.AsyncClient, witness: str) -> None:
    body = await _run(client, witness, "open('/workspace/witness-secret').read()")
    assert body["result"] == "'w1tness'", body


@pytest.mark.skipif(os.access(RUNSC, os.X_OK), reason="gVisor is installed here")
async def test_without_gvisor_high_is_refused_with_what_to_install(
    client: httpx.AsyncClient,
) -> None:
    created = await _create(client, securityLevel="high")
    assert created.status_code == 400, created.text
    assert "apt-get install runsc" in created.json()["error"]["message"]


async def test_a_high_sandbox_runs_under_gvisor_and_misses_no_protection(
    client: httpx.AsyncClient, high: str
) -> None:
    body = await _run(client, high, "cat /proc/version; dmesg", kind="command")
    assert body["exitCode"] == 0, body
    assert "Starting gVisor" in str(body["stdout"]), body
    status = await client.get(f"/sandboxes/{high}/status")
    assert status.status_code == 200, status.text
    assert status.json()["runtimeAlive"] is True
    assert status.json()["missingProtections"] == []


async def test_a_standard_sandbox_is_not_under_gvisor_and_misses_no_protection(
    client: httpx.AsyncClient, witness: str
) -> None:
    body = await _run(client, witness, "dmesg; cat /proc/version", kind="command")
    assert "gVisor" not in str(body["stdout"])
    status = await client.get(f"/sandboxes/{witness}/status")
    assert status.json()["missingProtections"] == []


@needs_gvisor
async def test_high_with_network_access_is_refused_not_downgraded(
    client: httpx.AsyncClient,
) -> None:
    created = await _create(client, securityLevel="high", networkAccess={"enabled": True})
    assert created.status_code == 400, created.text
    assert "networkAccess" in created.json()["error"]["message"]


def _host_has(path: str) -> bool:
    return os.path.exists(path)


TRY_OPEN = """
import json, os
def attempt(path, mode="r"):
    try:
        if os.path.isdir(path) and mode == "r":
            os.listdir(path)
        else:
            open(path, mode).close()
        return "ok"
    except OSError as exc:
        return type(exc).__name__
"""


async def test_host_files_the_repo_and_other_workspaces_are_unreadable(
    client: httpx.AsyncClient, high: str, witness: str, stack
) -> None:
    targets = [
        "/etc/shadow",
        "/root",
        "/work/main",
        os.getcwd(),
        str(Path(stack.runtime_dir) / "workspaces" / witness / "witness-secret"),
        str(Path(stack.runtime_dir) / "sandboxes"),
        "/opt/llmsafespace/../../../etc/shadow",
    ]
    found = await _value(
        client, high, TRY_OPEN + f"json.dumps({{p: attempt(p) for p in {targets!r}}})"
    )
    assert isinstance(found, dict)
    assert "ok" not in found.values(), found
    await _witness_answers(client, witness)


async def test_usr_etc_and_proc_sys_are_not_writable(client: httpx.AsyncClient, high: str) -> None:
    targets = ["/proc/sys/kernel/core_pattern", "/usr/pwned", "/etc/pwned", "/proc/sysrq-trigger"]
    found = await _value(
        client, high, TRY_OPEN + f"json.dumps({{p: attempt(p, 'w') for p in {targets!r}}})"
    )
    assert isinstance(found, dict)
    assert "ok" not in found.values(), found
    assert not _host_has("/usr/pwned")


async def test_stack_services_on_loopback_are_unreachable(
    client: httpx.AsyncClient, high: str, stack
) -> None:
    ports = [urlsplit(stack.env[key]).port for key in ("NATS_URL", "DATABASE_URL", "REDIS_URL")]
    ports.append(urlsplit(stack.api_url).port)
    code = f"""
import socket, json
out = {{}}
for port in {ports!r}:
    for host in ("127.0.0.1", "::1", "0.0.0.0", "10.0.2.2", "169.254.169.254"):
        try:
            socket.create_connection((host, port), timeout=1).close()
            out[f"{{host}}:{{port}}"] = "ok"
        except OSError as exc:
            out[f"{{host}}:{{port}}"] = type(exc).__name__
json.dumps(out)
"""
    found = await _value(client, high, code)
    assert isinstance(found, dict)
    assert len(found) == len(ports) * 5
    assert "ok" not in found.values(), found


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
    found = await _value(client, high, code)
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
    created = await _create(client, securityLevel="high", resources={"memory": "192Mi"})
    assert created.status_code == 201, created.text
    hog = created.json()["id"]
    try:
        response = await client.post(
            f"/sandboxes/{hog}/execute",
            json={"type": "code", "content": "hog = bytearray(400 * 2**20)", "timeout": 60},
        )
        assert response.status_code != 200 or response.json()["status"] != "completed"
        assert (await _run(client, high, "'alive'"))["result"] == "'alive'"
        await _witness_answers(client, witness)
    finally:
        await client.delete(f"/sandboxes/{hog}")
