"""Issue 16 through the public API: sandbox code against its agent and exec-svc's
connection to it (item 2), bad requests that used to kill that connection, and the
disk that used to fill memory and the agent's death (item 5)."""

import asyncio
import contextlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest

from .probes import create, run


@pytest.fixture(scope="module")
async def sandbox(client: httpx.AsyncClient) -> str:
    created = await create(client)
    assert created.status_code == 201, created.text
    sandbox_id: str = created.json()["id"]
    return sandbox_id


async def test_sandbox_code_cannot_stop_its_agent_or_touch_its_socket(
    client: httpx.AsyncClient, sandbox: str
) -> None:
    attack = (
        "kill -STOP $PPID; echo stop=$?; kill -KILL -1; echo all=$?; "
        "mv /run/llmsafespace/agent.sock /tmp/x; echo mv=$?; "
        "ln -sf / /run/llmsafespace/agent.sock; echo ln=$?"
    )
    body = await run(client, sandbox, attack, kind="command", timeout=20)
    assert body["stdout"] == "stop=1\nall=1\nmv=1\nln=1\n", body
    after = await run(client, sandbox, "echo still mine", kind="command", timeout=20)
    assert after["stdout"] == "still mine\n"


BAD_REQUESTS = {
    "NUL in the command": {"content": "echo a\0b"},
    "NUL in an env value": {"content": "true", "env": {"A": "x\0y"}},
    "'=' in an env name": {"content": "true", "env": {"A=B": "x"}},
    "NUL in the working dir": {"content": "true", "workingDir": "/tmp\0x"},
    "a working dir that does not exist": {"content": "true", "workingDir": "/nonexistent"},
}


@pytest.mark.parametrize("fields", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
async def test_a_bad_command_is_a_400_and_the_sandbox_keeps_answering(
    client: httpx.AsyncClient, sandbox: str, fields: dict[str, object]
) -> None:
    response = await client.post(
        f"/sandboxes/{sandbox}/execute", json={"type": "command", "timeout": 20, **fields}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    after = await run(client, sandbox, "echo ok", kind="command", timeout=20)
    assert after["stdout"] == "ok\n"


async def test_filling_the_disk_ends_in_enospc_and_the_sandbox_keeps_answering(
    client: httpx.AsyncClient,
) -> None:
    created = await create(client, resources={"memory": "512Mi", "ephemeralStorage": "1Gi"})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    try:
        fill = "dd if=/dev/zero of=/workspace/fill bs=1M count=2048 2>&1; rm -f /workspace/fill"
        body = await run(client, sandbox_id, fill, kind="command", timeout=120)
        assert "No space left on device" in str(body["stdout"]), body
        status = (await client.get(f"/sandboxes/{sandbox_id}/status")).json()
        assert status["status"] == "running", status
        after = await run(client, sandbox_id, "echo alive", kind="command", timeout=20)
        assert after["stdout"] == "alive\n"
    finally:
        await client.delete(f"/sandboxes/{sandbox_id}")


def _agent_pid(runtime_dir: Path, sandbox_id: str) -> int | None:
    """The host pid of a local sandbox's agent (the child of its bwrap init)."""
    meta = runtime_dir / "sandboxes" / sandbox_id / "meta.json"
    if not meta.exists():
        return None
    uid = json.loads(meta.read_text())["uid"]
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("Uid", "").split("\t")[0] != str(uid) or b"llmsafespace.agent" not in cmdline:
            continue
        parent = Path("/proc", fields["PPid"].strip(), "cmdline")
        with contextlib.suppress(OSError):
            if parent.read_bytes().startswith(b"/usr/bin/bwrap"):
                return int(entry.name)
    return None


async def test_a_sandbox_whose_agent_died_is_failed_at_once(
    client: httpx.AsyncClient, stack: Any
) -> None:
    created = await create(client)
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    try:
        pid = _agent_pid(stack.runtime_dir, sandbox_id)
        if pid is None:
            pytest.skip("not a local bubblewrap sandbox")
        os.kill(pid, signal.SIGKILL)  # as the OOM killer did when the disk filled memory
        for _ in range(300):  # the watch settles 3 s before it acts
            status = (await client.get(f"/sandboxes/{sandbox_id}")).json()["status"]
            if status != "running":
                break
            await asyncio.sleep(0.1)
        assert status == "failed"
    finally:
        await client.delete(f"/sandboxes/{sandbox_id}")


async def test_an_output_flood_is_clipped_in_a_synchronous_result(
    client: httpx.AsyncClient, sandbox: str
) -> None:
    flood = "head -c 4000000 /dev/zero | tr '\\0' x"
    body = await run(client, sandbox, flood, kind="command", timeout=60)
    assert body["outputTruncated"] is True
    assert len(str(body["stdout"])) == 256 * 1024
