"""Watching a child process exit (via a pidfd) and what ended it."""

from __future__ import annotations

import contextlib
import errno
import os

from . import threads
from .protocol import TYPE_CHECKING

if TYPE_CHECKING:
    import signal
else:  # its C module, as the worker (``signal`` loads its enums into every sandbox)
    import _signal as signal


def exit_fd(pid: int) -> int:
    """An fd that becomes readable when ``pid`` (a child of ours) has exited; it is not
    reaped. The caller closes the fd."""
    try:
        return os.pidfd_open(pid)
    except OSError as exc:
        if exc.errno != errno.ENOSYS:
            raise
    return exit_fd_thread(pid)  # gVisor releases before 2023 lack pidfd_open


def exit_fd_thread(pid: int) -> int:
    """``exit_fd`` without a pidfd: a thread of its own waits (not reaping) for ``pid``, then
    closes the write end of a pipe whose read end it returns."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)

    def wait() -> None:
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        os.close(write_end)

    threads.start(wait)
    return read_end


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
