"""The agent's threads: started without waiting for them to begin, and kept, up to a
bound, for the next target."""

from __future__ import annotations

import _thread
import time
from collections.abc import Callable

from llmsafespace.agent import threads


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _ident_of_a_run() -> int:
    """Run a target through `threads.start`; the id of the thread that ran it."""
    ran: list[int] = []
    threads.start(lambda: ran.append(_thread.get_ident()))
    _until(lambda: bool(ran))
    return ran[0]


def test_start_returns_before_the_target_runs_on_a_thread_of_its_own() -> None:
    gate = _thread.allocate_lock()
    gate.acquire()
    seen: list[tuple[str, int]] = []

    def work(name: str) -> None:
        with gate:  # held by the test: start returned while the target waited
            seen.append((name, _thread.get_ident()))

    threads.start(work, "ran")
    assert seen == []
    gate.release()
    _until(lambda: bool(seen))
    assert [name for name, _ in seen] == ["ran"]
    assert seen[0][1] != _thread.get_ident()


def test_a_thread_whose_target_returned_runs_the_next_one() -> None:
    first = _ident_of_a_run()
    _until(lambda: bool(threads._idle))  # it waits now
    assert _ident_of_a_run() == first


def test_threads_beyond_the_bound_end_when_their_target_returns() -> None:
    gate = _thread.allocate_lock()
    gate.acquire()
    running: list[int] = []
    returned: list[int] = []

    def work() -> None:
        running.append(1)
        with gate:
            pass
        returned.append(1)

    extra = 2
    for _ in range(threads.IDLE_MAX + extra):
        threads.start(work)
    _until(lambda: len(running) == threads.IDLE_MAX + extra)
    busy = _thread._count()  # every waiting thread took one, and new ones ran the rest
    gate.release()
    _until(lambda: len(returned) == threads.IDLE_MAX + extra)
    _until(lambda: _thread._count() == busy - extra)
    assert len(threads._idle) == threads.IDLE_MAX


def test_reserve_leaves_a_thread_waiting_and_starts_none_while_one_waits() -> None:
    gate = _thread.allocate_lock()
    gate.acquire()
    running: list[int] = []

    def hold() -> None:
        running.append(1)
        with gate:
            pass

    waiting = len(threads._idle)
    for _ in range(waiting):  # every waiting thread busy: none waits now
        threads.start(hold)
    _until(lambda: len(running) == waiting)
    assert threads._idle == []
    count = _thread._count()
    threads.reserve()
    _until(lambda: len(threads._idle) == 1)
    assert _thread._count() == count + 1
    threads.reserve()
    assert _thread._count() == count + 1
    assert len(threads._idle) == 1
    gate.release()
