"""Watching a child process exit without blocking the event loop (via a pidfd)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import threading


def exit_watch(pid: int) -> asyncio.Future[None]:
    """A future that completes when ``pid`` (a child of ours) has exited; it is not reaped."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
        return exit_watch_thread(pid)  # gVisor releases before 2023 lack pidfd_open

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        if not future.done():
            future.set_result(None)

    loop.add_reader(pidfd, on_exit)
    return future


def exit_watch_thread(pid: int) -> asyncio.Future[None]:
    """``exit_watch`` without a pidfd: a thread of its own waits (not reaping) for ``pid``."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def done() -> None:
        if not future.done():
            future.set_result(None)

    def wait() -> None:
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(done)

    threading.Thread(target=wait, name=f"exit-watch-{pid}", daemon=True).start()
    return future


OOM_COUNTERS = ("/sys/fs/cgroup/memory.oom_control", "/sys/fs/cgroup/memory.events")


def oom_kills() -> int:
    """The sandbox cgroup's OOM-kill count (its counter file is bound read-only); 0 if absent."""
    for path in OOM_COUNTERS:
        try:
            with open(path) as file:
                for line in file:
                    name, _, value = line.partition(" ")
                    if name == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


def ended_by_signal(signum: int, oom_kills_before: int) -> str:
    """Why a process killed by ``signum`` ended: "oom" only if the kernel counted an OOM kill."""
    return "oom" if signum == signal.SIGKILL and oom_kills() > oom_kills_before else "signal"
