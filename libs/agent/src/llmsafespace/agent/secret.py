"""Keeping the agent's token out of reach of the user code that runs beside it.

User code runs as the same uid as the agent, so it could read the agent's memory through
``/proc/<pid>/mem`` (there is no Yama on these hosts): the supervisor makes itself not
dumpable, which limits that file to processes with CAP_SYS_PTRACE. The worker is forked
from the supervisor and holds a copy of its memory, token included, and user code runs
inside it: before it runs any, the worker overwrites every copy of the token in its
writable memory, then makes itself dumpable again (as any normal process is).
"""

from __future__ import annotations

import ctypes
import fcntl
import os

from .libc import libc

PR_SET_DUMPABLE = 4
F_GETPIPE_SZ = 1032


def set_dumpable(dumpable: bool) -> None:
    """Allow (or forbid) other processes of our uid to read our memory and open our fds."""
    if libc().prctl(PR_SET_DUMPABLE, int(dumpable), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")


def _writable_regions() -> list[tuple[int, int]]:
    regions = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, perms = line.split(maxsplit=2)[:2]
            if perms.startswith("rw"):
                start, end = span.split("-")
                regions.append((int(start, 16), int(end, 16)))
    return regions


def wipe(secret: str) -> int:
    """Zero every copy of ``secret`` (ASCII) in this process's writable memory; how many.

    ``/proc/self/mem`` is closed to a process that is not dumpable, so memory is read by
    writing it into a pipe: a page unmapped meanwhile then fails that write (EFAULT)
    instead of crashing us. ``secret`` itself is wiped too; the caller must not use it.
    """
    needle = bytearray(secret, "ascii")
    size = len(needle)
    if not size:
        return 0
    read_end, write_end = os.pipe()
    try:
        capacity = fcntl.fcntl(write_end, F_GETPIPE_SZ)
        buffer = bytearray(capacity)
        own = [(_address(obj), len(obj)) for obj in (needle, buffer)]
        view = memoryview(buffer)
        wiped = 0
        for start, end in _writable_regions():
            # Windows overlap by size - 1 bytes, so a copy across their border is seen.
            for offset in range(start, end, max(1, capacity - size + 1)):
                window = (ctypes.c_char * min(capacity, end - offset)).from_address(offset)
                try:
                    got = os.write(write_end, window)
                except OSError:
                    continue
                filled = 0
                while filled < got:
                    filled += os.readv(read_end, [view[filled:got]])
                found = buffer.find(needle, 0, got)
                while found != -1:
                    address = offset + found
                    if not any(base <= address < base + length for base, length in own):
                        ctypes.memset(address, 0, size)
                        wiped += 1
                    found = buffer.find(needle, found + 1, got)
        view.release()
        buffer[:] = bytes(len(buffer))
    finally:
        os.close(read_end)
        os.close(write_end)
        needle[:] = bytes(size)
    return wiped


def _address(buffer: bytearray) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buffer))
