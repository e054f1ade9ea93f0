"""Watching a child process exit without blocking the event loop (via a pidfd)."""

from __future__ import annotations

import asyncio
import os


def exit_watch(pid: int) -> asyncio.Future[None]:
    """A future that completes when ``pid`` (a child of ours) has exited; it is not reaped."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    pidfd = os.pidfd_open(pid)

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        if not future.done():
            future.set_result(None)

    loop.add_reader(pidfd, on_exit)
    return future


def ended_by_signal(signum: int) -> str:
    """Why a process killed by ``signum`` ended; an unasked-for SIGKILL is most likely OOM."""
    return "oom" if signum == 9 else "signal"
