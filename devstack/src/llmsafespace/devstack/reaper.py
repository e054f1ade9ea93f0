"""Adopt and reap orphans: sandboxes left behind when a service dies end up here."""

import ctypes
import os
from collections.abc import Callable
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Make orphaned descendants re-parent to this process instead of to init."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def zombie_children() -> set[int]:
    """Pids of this process's children that have exited and wait to be reaped."""
    me = os.getpid()
    zombies: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if state == "Z" and int(ppid) == me:
            zombies.add(int(entry.name))
    return zombies


class OrphanReaper:
    """Reaps zombie children nobody else waits for.

    Children that this process started itself are waited for by their owners (Popen,
    asyncio); a zombie is reaped here only if is_managed says it is not one of the
    devstack's own and it was already a zombie at the previous sweep, so a waiter
    elsewhere in the process always gets its chance first.
    """

    def __init__(self, is_managed: Callable[[int], bool]) -> None:
        self._is_managed = is_managed
        self._seen: set[int] = set()

    def sweep(self) -> int:
        """Reap what is due now; return how many were reaped."""
        zombies = {pid for pid in zombie_children() if not self._is_managed(pid)}
        reaped = 0
        for pid in zombies & self._seen:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    reaped += 1
            except ChildProcessError:
                pass
        self._seen = zombies
        return reaped
