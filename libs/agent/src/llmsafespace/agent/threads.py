"""Threads on ``_thread``, without the ``threading`` module, and kept for the next use.

Every sandbox's agent runs idle for most of its life, and what it imported and touched is
what it costs: ``threading`` (and ``queue``, which needs it) is ~0.2 MB more of the agent's
memory, and each ``threading.Thread`` runs its bookkeeping in Python (an ``Event``, a
``Condition``, the registry of live threads), objects whose every touch copies a page the
agent shares with its forked worker. Without them each idle sandbox is ~0.5 MB smaller
(anon PSS of agent and worker after running ``1``).

A thread whose target returned waits for the next one (up to ``IDLE_MAX`` of them wait):
each request a connection reads hands reading on to another thread (see
``server.Connection``), and starting a new thread for it cost each execution's round trip
~0.1-0.2 ms, where waking a waiting one costs it nothing measurable.
"""

from __future__ import annotations

import _thread
from collections.abc import Callable

from .protocol import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    Task = tuple[Callable[..., object], tuple[Any, ...]]

IDLE_MAX = 2  # threads kept waiting: a connection's next reader, and one spare

_idle: list[tuple[_thread.LockType, list[Task]]] = []  # (its wake-up, where its task goes)
_guard = _thread.allocate_lock()


def start(target: Callable[..., object], *args: Any) -> None:
    """Run ``target(*args)`` on a waiting thread, else on a new one (a daemon: it does not
    hold the process up); returns without waiting for it to begin. Raises RuntimeError
    when the system refuses a new thread (pids limit)."""
    with _guard:
        waiting = _idle.pop() if _idle else None
    if waiting is None:
        _thread.start_new_thread(_serve, (target, args))
        return
    wake, tasks = waiting
    tasks.append((target, args))
    wake.release()


def reserve() -> None:
    """Have a thread waiting: start one unless one waits already (a new connection's,
    so that its first request wakes a thread rather than starts one). Raises RuntimeError
    when the system refuses a new thread."""
    with _guard:
        if _idle:
            return
    _thread.start_new_thread(_serve, (_nothing, ()))


def _nothing() -> None:
    """The target of a thread started only to wait (``reserve``)."""


def _serve(target: Callable[..., object], args: tuple[Any, ...]) -> None:
    """Run tasks until there are enough waiting threads without this one. A target that
    raises ends its thread (reported as any thread's uncaught exception)."""
    while True:
        target(*args)
        wake = _thread.allocate_lock()
        wake.acquire()
        tasks: list[Task] = []
        with _guard:
            if len(_idle) >= IDLE_MAX:
                return
            _idle.append((wake, tasks))
        wake.acquire()
        target, args = tasks.pop()
