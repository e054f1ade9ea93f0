"""What an execution leaves running, through the public API (docs/security.md, "What a
command leaves running"): a command's leftovers end with it; a code cell's children are
the interpreter's, as in a Jupyter kernel, and a fork bomb among them is held by the
sandbox's pids limit, and the sandbox keeps answering (the agent restarts the
interpreter, and so ends the bomb, when it finds no pid left for a request)."""

from __future__ import annotations

import httpx
import pytest

from .probes import create, run, value, witness_answers

pytestmark = pytest.mark.stack

EAGAIN = 11
PIDS_MAX = 256  # the local driver's per-sandbox pids.max

# Forks until the pids limit refuses; every child forks on too, for good (a second's
# pause between tries keeps the spinning down). The cell returns; its children stay.
FORK_BOMB = """
import json, os, time
def bomb():
    while True:
        try:
            os.fork()
        except OSError:
            pass
        time.sleep(1)
forked, error = 0, None
try:
    for _ in range(2000):
        if os.fork() == 0:
            bomb()
        forked += 1
except OSError as exc:
    error = exc.errno
json.dumps([forked, error])
"""
# Whether a pid is gone (or a zombie), waiting for it a bounded while: a SIGKILL was sent
# before the command's result, and dying takes a moment.
GONE = """
import json, time
def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True
deadline = time.monotonic() + 20
while not gone(PID) and time.monotonic() < deadline:
    time.sleep(0.05)
json.dumps(gone(PID))
"""


async def _sandbox(client: httpx.AsyncClient) -> str:
    created = await create(client)
    assert created.status_code == 201, created.text
    sandbox_id: str = created.json()["id"]
    return sandbox_id


async def test_a_fork_bomb_in_a_code_cell_is_held_by_the_pids_limit_and_the_sandbox_answers(
    client: httpx.AsyncClient, witness: str
) -> None:
    sandbox_id = await _sandbox(client)
    try:
        forked, error = await value(client, sandbox_id, FORK_BOMB)  # type: ignore[misc]
        assert error == EAGAIN
        assert forked < PIDS_MAX
        # A shell needs a pid the bomb holds: the agent makes room (it used to die here).
        echoed = await run(client, sandbox_id, "echo ok", kind="command")
        assert (echoed["status"], echoed["stdout"]) == ("completed", "ok\n"), echoed
        alive = await run(client, sandbox_id, "'alive'")
        assert alive["result"] == "'alive'"
        assert "out of processes" in str(alive["stderr"])  # why its variables are gone
        await witness_answers(client, witness)
    finally:
        await client.delete(f"/sandboxes/{sandbox_id}")


async def test_what_a_code_cell_starts_outlives_the_cell(client: httpx.AsyncClient) -> None:
    sandbox_id = await _sandbox(client)
    try:
        started = "import subprocess\nserver = subprocess.Popen(['sleep', '300'])"
        await run(client, sandbox_id, started)
        assert (await run(client, sandbox_id, "server.poll() is None"))["result"] == "True"
    finally:
        await client.delete(f"/sandboxes/{sandbox_id}")


async def test_what_a_command_leaves_running_ends_with_it(
    client: httpx.AsyncClient, witness: str
) -> None:
    sandbox_id = await _sandbox(client)
    try:
        started = await run(
            client, sandbox_id, "for i in 1 2 3; do sleep 300 & done; echo $!", kind="command"
        )
        assert started["status"] == "completed", started
        pid = int(str(started["stdout"]).strip())
        assert await value(client, sandbox_id, GONE.replace("PID", str(pid))) is True
        await witness_answers(client, witness)
    finally:
        await client.delete(f"/sandboxes/{sandbox_id}")
