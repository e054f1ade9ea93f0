"""Threads on ``_thread``, without the ``threading`` module.

Every sandbox's agent runs idle for most of its life, and what it imported and touched is
what it costs: ``threading`` (and ``queue``, which needs it) is ~0.2 MB more of the agent's
memory, and each ``threading.Thread`` runs its bookkeeping in Python (an ``Event``, a
``Condition``, the registry of live threads), objects whose every touch copies a page the
agent shares with its forked worker. Without them each idle sandbox is ~0.5 MB smaller
(anon PSS of agent and worker after running ``1``). The agent needs only start and join.
"""

from __future__ import annotations

import _thread
from collections.abc import Callable

from .protocol import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any


class Thread:
    """Runs ``target(*args)`` on a thread of its own (a daemon: it does not hold the
    process up); ``join`` waits for it to return."""

    def __init__(self, target: Callable[..., object], *args: Any) -> None:
        self._target = target
        self._args = args
        self._running = _thread.allocate_lock()  # held while the thread runs
        self._starting = _thread.allocate_lock()  # held until it runs

    def start(self) -> None:
        """Start the thread and return once it runs (as ``threading.Thread.start``: what
        the caller does next, e.g. read the next request, comes after the thread began);
        raises RuntimeError when the system refuses a thread (pids limit)."""
        self._running.acquire()
        self._starting.acquire()
        try:
            _thread.start_new_thread(self._run, ())
        except BaseException:
            self._starting.release()
            self._running.release()
            raise
        with self._starting:  # released by the thread itself
            pass

    def join(self) -> None:
        """Wait until the thread has returned (at once if it never started)."""
        with self._running:
            pass

    def _run(self) -> None:
        self._starting.release()
        try:
            self._target(*self._args)
        finally:
            self._running.release()
