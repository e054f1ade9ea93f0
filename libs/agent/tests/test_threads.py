"""The agent's threads: start, and join after the target returned."""

from __future__ import annotations

import _thread

from llmsafespace.agent.threads import Thread


def test_join_returns_once_the_target_has_returned() -> None:
    gate = _thread.allocate_lock()
    gate.acquire()
    done: list[str] = []

    def work(name: str) -> None:
        with gate:  # holds the thread until the test lets it go
            done.append(name)

    thread = Thread(work, "ran")
    thread.start()
    gate.release()
    thread.join()
    assert done == ["ran"]


def test_a_thread_never_started_joins_at_once() -> None:
    Thread(print).join()
