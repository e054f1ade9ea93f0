"""The cancellation flag: a waiter woken by it must already see it set (else a cancelled
execution reads as timed out: the run thread wakes on the eventfd and asks at once)."""

import os
import selectors

import pytest

from llmsafespace.agent.cancel import Cancel


def test_the_flag_is_set_before_the_eventfd_wakes_a_waiter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cancel = Cancel()
    seen_by_waiter: list[bool] = []
    write = os.eventfd_write

    def waking(fd: int, value: int) -> None:
        seen_by_waiter.append(cancel.is_set())  # what a thread woken right now would see
        write(fd, value)

    monkeypatch.setattr(os, "eventfd_write", waking)
    cancel.set()
    cancel.set()  # once is enough
    assert seen_by_waiter == [True]
    with selectors.DefaultSelector() as selector:
        selector.register(cancel.fileno(), selectors.EVENT_READ)
        assert selector.select(0), "a set flag is readable"
    cancel.close()
    cancel.set()  # after close: the flag only
    assert cancel.is_set()
