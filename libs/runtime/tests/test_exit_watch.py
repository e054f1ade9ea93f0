"""The local driver's exit watch reports a sandbox whose first process ended, and not one
whose first process is still starting (before its switch to the sandbox's uid)."""

import asyncio
import contextlib
import time
from pathlib import Path

from llmsafespace.runtime.local.exits import ExitWatch
from llmsafespace.runtime.local.layout import Layout, SandboxMeta

UNUSED_UID = 64999  # no process runs as it: the watched process is still "root"


def _record(layout: Layout, sandbox_id: str, pid: int) -> None:
    layout.state(sandbox_id).mkdir(parents=True)
    meta = SandboxMeta(
        sandbox_id=sandbox_id, uid=UNUSED_UID, pid=pid, token="t", created_at=time.time()
    )
    layout.write_meta(meta)


async def test_a_process_not_yet_under_its_uid_is_reported_only_once_it_ends(
    tmp_path: Path,
) -> None:
    layout = Layout(tmp_path)
    # Root's, as setpriv's is before its switch to the sandbox's uid.
    starting = await asyncio.create_subprocess_exec("sleep", "60")
    _record(layout, "sb-starting00000", starting.pid)
    watch = ExitWatch(layout, set(), interval=0.01, starting=60.0).run()
    killed = False

    async def kill_after_rescans() -> None:
        nonlocal killed
        await asyncio.sleep(0.3)  # thirty rescans that must not report it
        killed = True
        starting.kill()

    killer = asyncio.create_task(kill_after_rescans())
    try:
        async with asyncio.timeout(10):
            failure = await anext(watch)
        assert killed, "reported while its process was still starting"
        assert failure.runtime_id == "sb-starting00000"
    finally:
        killer.cancel()
        with contextlib.suppress(ProcessLookupError):
            starting.kill()
        await starting.wait()
        await watch.aclose()


async def test_a_process_past_its_start_window_under_another_uid_counts_as_ended(
    tmp_path: Path,
) -> None:
    layout = Layout(tmp_path)
    # Someone else's process, as when the pid is reused.
    other = await asyncio.create_subprocess_exec("sleep", "60")
    try:
        _record(layout, "sb-reused0000000", other.pid)
        watch = ExitWatch(layout, set(), interval=0.01, starting=0.0).run()
        async with asyncio.timeout(10):
            failure = await anext(watch)
        assert failure.runtime_id == "sb-reused0000000"
        await watch.aclose()
    finally:
        with contextlib.suppress(ProcessLookupError):
            other.kill()
        await other.wait()
