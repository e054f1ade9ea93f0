"""Which sandboxes the local driver reports as ended on their own."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from llmsafespace.runtime.local.exits import ExitWatch
from llmsafespace.runtime.local.layout import Layout, SandboxMeta

SANDBOX_UID = 64_999  # no process runs as it


def _record(layout: Layout, sandbox_id: str, pid: int) -> None:
    layout.state(sandbox_id).mkdir(parents=True)
    meta = SandboxMeta(sandbox_id=sandbox_id, uid=SANDBOX_UID, pid=pid, token="t", created_at=0)
    layout.write_meta(meta)


async def test_a_sandbox_whose_setpriv_has_not_switched_uid_yet_is_not_reported_ended(
    tmp_path: Path,
) -> None:
    """Right after the spawn, the recorded pid is still root's ``setpriv``: starting, not
    ended (under load a rescan in that moment failed healthy sandboxes)."""
    setpriv = tmp_path / "setpriv"  # a stand-in of the same name, still root
    shutil.copy("/bin/sleep", setpriv)
    starting = await asyncio.create_subprocess_exec(str(setpriv), "60")
    ended = await asyncio.create_subprocess_exec("true")
    await ended.wait()
    layout = Layout(tmp_path / "runtime")
    _record(layout, "a-starting", starting.pid)  # rescanned first
    _record(layout, "b-ended", ended.pid)
    failures = ExitWatch(layout, set(), interval=0.05).run()
    try:
        assert (await anext(failures)).runtime_id == "b-ended"
        starting.kill()
        await starting.wait()
        assert (await anext(failures)).runtime_id == "a-starting"
    finally:
        if starting.returncode is None:
            starting.kill()
            await starting.wait()
        await failures.aclose()
