"""The C library, for the agent's system calls (prctl, seccomp, Landlock), loaded once.

Each ``ctypes.CDLL`` builds a class of its own and a function object per name it is asked
for. Loaded per call, the worker's one call (``secret.set_dumpable``) built them again in
memory it shares with the agent, copying those pages (~50 KB of each sandbox); loaded
once, before the fork, both processes use the agent's.
"""

from __future__ import annotations

import ctypes
import functools


@functools.cache
def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)
