"""``run_command``: a shell command in its own process group, streamed, with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
from typing import Any

from .outcome import Outcome, Sink, Usage, stopped
from .pipes import PipeReader
from .processes import ended_by_signal, exit_watch, oom_kills

StdinQueue = asyncio.Queue[tuple[str, bool]]
"""Input for a running command: (text, eof); eof closes its stdin after the text."""


async def feed_input(fd: int, inbound: StdinQueue) -> None:
    """Write queued input to the child's stdin pipe (never blocking the loop) until eof."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    try:
        while True:
            text, eof = await inbound.get()
            data = text.encode()
            while data:
                try:
                    data = data[os.write(fd, data) :]
                except BlockingIOError:
                    writable = loop.create_future()
                    loop.add_writer(fd, writable.set_result, None)
                    try:
                        await writable
                    finally:
                        loop.remove_writer(fd)
            if eof:
                return
    except OSError:
        return  # the command closed its stdin or exited: later input goes nowhere
    finally:
        os.close(fd)


def reap(pid: int) -> tuple[int, resource.struct_rusage]:
    """Reap an exited child, with its resource usage."""
    _, status, rusage = os.wait4(pid, 0)
    return status, rusage


async def run_command(
    command: str,
    *,
    time_limit: float,
    env: dict[str, str],
    cwd: str,
    sink: Sink,
    cancel: asyncio.Event,
    stdin: StdinQueue | None = None,
) -> Outcome:
    """Run ``/bin/sh -c command``; when it ends (or on timeout or cancel) kill its whole
    process group.
    With ``stdin`` its stdin is a pipe fed from that queue, else it is empty."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    oom_before = oom_kills()
    # Popen, not asyncio's subprocess: asyncio reaps the child itself and its rusage is lost.
    proc = subprocess.Popen(  # noqa: ASYNC220 - fork/exec is quick
        ["/bin/sh", "-c", command],
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    pipes = [PipeReader(proc.stdout.fileno(), "stdout"), PipeReader(proc.stderr.fileno(), "stderr")]
    for pipe in pipes:
        pipe.sink = sink
    feeder = None
    if stdin is not None and proc.stdin is not None:
        # The feeder owns the fd from here (closes it on eof or when the command ends).
        feeder = asyncio.ensure_future(feed_input(os.dup(proc.stdin.fileno()), stdin))
        proc.stdin.close()
    exited = exit_watch(proc.pid)
    stop = asyncio.ensure_future(cancel.wait())
    try:
        waiting: set[asyncio.Future[Any]] = {exited, stop}
        done, _ = await asyncio.wait(waiting, timeout=time_limit, return_when="FIRST_COMPLETED")
    finally:
        stop.cancel()
        if not exited.done():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await asyncio.shield(exited)
    if feeder is not None:
        feeder.cancel()
    # What the command left running in its group (``cmd &``, a fork bomb) ends with it;
    # the shell is not reaped yet, so its pid still names this group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    status, rusage = reap(proc.pid)
    proc.returncode = os.waitstatus_to_exitcode(status)
    for pipe in pipes:
        pipe.stop()
    proc.stdout.close()
    proc.stderr.close()
    usage = Usage(
        wall_ms=(loop.time() - started) * 1000.0,
        cpu_ms=(rusage.ru_utime + rusage.ru_stime) * 1000.0,
        peak_memory_bytes=rusage.ru_maxrss * 1024,
    )
    if exited not in done:
        return stopped("cancelled" if cancel.is_set() else "timeout", usage)
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return Outcome("failed", 128 + signum, ended_by_signal(signum, oom_before), usage)
    code = os.WEXITSTATUS(status)
    return Outcome("completed" if code == 0 else "failed", code, "exit", usage)
