"""Hostile code through the public API: every escape attempt fails, every flood is contained.

Each probe runs inside a real sandbox of the running stack and reports what happened;
the test asserts the attempt failed. A "witness" sandbox must keep answering throughout.
"""

from __future__ import annotations

import os
import shlex
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

EPERM, EAFNOSUPPORT, ENOSPC, EAGAIN = 1, 97, 28, 11
SIGSYS = 31


async def _create(api: httpx.AsyncClient, **resources: object) -> str:
    created = await create(api, **({"resources": resources} if resources else {}))
    assert created.status_code == 201, created.text
    identifier: str = created.json()["id"]
    return identifier


@pytest.fixture(scope="module")
async def attacker(client: httpx.AsyncClient) -> AsyncIterator[str]:
    sandbox_id = await _create(client)
    yield sandbox_id
    await client.delete(f"/sandboxes/{sandbox_id}")


async def test_host_files_the_repo_and_other_workspaces_are_unreadable(
    client: httpx.AsyncClient, attacker: str, witness: str, stack
) -> None:
    await assert_host_files_unreadable(client, attacker, witness, Path(stack.runtime_dir))


async def test_proc_sys_usr_and_etc_are_not_writable(
    client: httpx.AsyncClient, attacker: str
) -> None:
    await assert_system_paths_unwritable(client, attacker)


async def test_host_pids_are_invisible_and_cannot_be_signalled(
    client: httpx.AsyncClient, attacker: str
) -> None:
    code = f"""
import os, json
pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
try:
    os.kill({os.getpid()}, 0)
    signalled = "ok"
except OSError as exc:
    signalled = type(exc).__name__
json.dumps([max(pids), signalled])
"""
    highest, signalled = await value(client, attacker, code)  # type: ignore[misc]
    assert highest < 100
    assert signalled != "ok"


SYSCALLS = {
    "mount": (165, 0, 0, 0, 0, 0),
    "unshare": (272, 0x10000000),
    "setns": (308, 0, 0),
    "chroot": (161, 0),
    "ptrace": (101, 16, 1, 0, 0),  # PTRACE_ATTACH to our pid 1
    "bpf": (321, 0, 0, 0),
    "keyctl": (250, 0, 0),
    "add_key": (248, 0, 0, 0, 0, 0),
    "io_uring_setup": (425, 1, 0),
    "userfaultfd": (323, 0),
    "perf_event_open": (298, 0, 0, -1, -1, 0),
    "open_by_handle_at": (304, 0, 0, 0),
    "fsopen": (430, 0, 0),
    "clone_newuser": (56, 0x10000000 | 17, 0, 0, 0, 0),
}


async def test_dangerous_syscalls_are_refused(client: httpx.AsyncClient, attacker: str) -> None:
    code = f"""
import ctypes, json
libc = ctypes.CDLL(None, use_errno=True)
out = {{}}
for name, args in {SYSCALLS!r}.items():
    ctypes.set_errno(0)
    ret = libc.syscall(*[ctypes.c_long(a) for a in args])
    out[name] = [ret, ctypes.get_errno()]
json.dumps(out)
"""
    found = await value(client, attacker, code)
    assert isinstance(found, dict)
    assert all(ret == -1 and err == EPERM for ret, err in found.values()), found


async def test_only_unix_and_ip_sockets_can_be_opened(
    client: httpx.AsyncClient, attacker: str
) -> None:
    code = """
import socket, json
out = {}
for family in (40, 17, 38, 16, 4, 0x100000028):  # VSOCK, PACKET, ALG, NETLINK, IPX, VSOCK|hi
    try:
        socket.socket(family & 0xFFFFFFFF, socket.SOCK_STREAM).close()
        out[family] = "ok"
    except OSError as exc:
        out[family] = exc.errno
json.dumps(out)
"""
    found = await value(client, attacker, code)
    assert isinstance(found, dict)
    assert "ok" not in found.values(), found


async def test_the_i386_syscall_abi_kills_the_caller(
    client: httpx.AsyncClient, attacker: str
) -> None:
    # mov eax, 20 (i386 getpid); int 0x80; ret — executed from an anonymous executable page
    code = (
        "import ctypes, mmap\n"
        "m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
        "m.write(bytes.fromhex('b814000000cd80c3'))\n"
        "addr = ctypes.addressof(ctypes.c_char.from_buffer(m))\n"
        "print(ctypes.CFUNCTYPE(ctypes.c_int)(addr)())\n"
    )
    body = await run(
        client, attacker, f"python3 -c {shlex.quote(code)}", kind="command", timeout=20
    )
    assert body["exitCode"] == 128 + SIGSYS, body
    assert body["stdout"] == ""


async def test_stack_services_on_loopback_are_unreachable(
    client: httpx.AsyncClient, attacker: str, stack
) -> None:
    await assert_stack_unreachable(client, attacker, stack)


async def test_setuid_binaries_give_no_root_and_pid_1_has_no_secrets(
    client: httpx.AsyncClient, attacker: str, stack
) -> None:
    body = await run(
        client,
        attacker,
        "grep NoNewPrivs /proc/self/status; su root -c id </dev/null; "
        "mount -t tmpfs x /tmp 2>&1; id -u; cat /proc/1/environ | tr '\\0' '\\n'",
        kind="command",
    )
    stdout = str(body["stdout"])
    assert "NoNewPrivs:\t1" in stdout
    assert "uid=0" not in stdout
    assert "\n0\n" not in stdout
    for secret in (stack.admin_key, stack.env["DATABASE_URL"], "DATABASE_URL", "NATS_URL"):
        assert secret not in stdout


async def test_an_oom_kills_only_the_offender_and_the_sandbox_answers_again(
    client: httpx.AsyncClient, witness: str
) -> None:
    sandbox_id = await _create(client, memory="128Mi")
    try:
        await run(client, sandbox_id, "kept = 41")
        body = await run(client, sandbox_id, "hog = bytearray(400 * 2**20)")
        assert (body["status"], body["endedBy"]) == ("failed", "oom"), body
        again = await run(client, sandbox_id, "40 + 2")
        assert again["result"] == "42"
        await witness_answers(client, witness)
    finally:
        await client.delete(f"/sandboxes/{sandbox_id}")


FORK_BOMB = """
import os, time, json
children, error = [], None
try:
    for _ in range(2000):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
except OSError as exc:
    error = exc.errno
for pid in children:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
json.dumps([len(children), error])
"""


async def test_a_fork_bomb_is_stopped_by_the_pids_limit_and_the_agent_lives(
    client: httpx.AsyncClient, attacker: str, witness: str
) -> None:
    forked, error = await value(client, attacker, FORK_BOMB)  # type: ignore[misc]
    assert error == EAGAIN
    assert forked < 256
    assert (await run(client, attacker, "'alive'"))["result"] == "'alive'"
    await witness_answers(client, witness)


CPU_SPIN = """
import os, time, json
start = time.monotonic()
children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            pass
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
wall = time.monotonic() - start
times = os.times()
json.dumps((times.children_user + times.children_system) / wall)
"""


async def test_a_cpu_spinner_is_throttled_to_its_quota(
    client: httpx.AsyncClient, witness: str
) -> None:
    sandbox_id = await _create(client, cpu=0.5)
    try:
        ratio = await value(client, sandbox_id, CPU_SPIN)
        assert isinstance(ratio, float)
        assert ratio <= 0.5 + 0.15, f"{ratio:.2f} CPU-s per s with a quota of 0.5"
        await witness_answers(client, witness)
    finally:
        await client.delete(f"/sandboxes/{sandbox_id}")


DISK_FLOOD = """
import json
out = {}
for directory in ("/workspace", "/tmp"):
    written, error = 0, None
    try:
        for number in range(256):  # files of 4 MiB: the filesystem fills, not one file
            with open(f"{directory}/flood-{number}", "wb") as f:
                for _ in range(4):
                    f.write(b"x" * 2**20)
                    written += 2**20
    except OSError as exc:
        error = exc.errno
    out[directory] = [written, error]
json.dumps(out)
"""


async def test_a_disk_flood_ends_in_enospc(client: httpx.AsyncClient, witness: str) -> None:
    sandbox_id = await _create(client, ephemeralStorage="32Mi")
    try:
        found = await value(client, sandbox_id, DISK_FLOOD)
        assert isinstance(found, dict)
        for written, error in found.values():
            assert error == ENOSPC
            assert written <= 32 * 2**20
        assert (await run(client, sandbox_id, "1"))["result"] == "1"
        await witness_answers(client, witness)
    finally:
        await client.delete(f"/sandboxes/{sandbox_id}")
