"""How a command's end becomes its outcome: what the reaped process used, and a command
that did not exit on its own ending `cancelled` or `timeout` (a terminal ends the same way)."""

from __future__ import annotations

import os
import resource
import time

import pytest

from llmsafespace.agent.cancel import Cancel
from llmsafespace.agent.commands import run_command, used
from llmsafespace.agent.frames import CANCELLED_EXIT_CODE, TIMEOUT_EXIT_CODE


def _ignore(stream: str, text: str) -> None:
    return None


def test_what_a_reaped_child_used_is_in_milliseconds_and_bytes() -> None:
    rusage = resource.struct_rusage((1.5, 0.25, 2048) + (0,) * 13)  # utime, stime, maxrss KiB
    usage = used(time.monotonic(), rusage)
    assert (usage.cpu_ms, usage.peak_memory_bytes) == (1750.0, 2048 * 1024)
    assert usage.wall_ms >= 0


@pytest.mark.parametrize(
    ("time_limit", "cancelled", "ending"),
    [
        (0.1, False, ("timeout", TIMEOUT_EXIT_CODE, "timeout")),
        (30.0, True, ("cancelled", CANCELLED_EXIT_CODE, "cancelled")),
    ],
)
def test_a_command_that_does_not_exit_is_cancelled_if_asked_else_timed_out(
    time_limit: float, cancelled: bool, ending: tuple[str, int, str]
) -> None:
    cancel = Cancel()
    if cancelled:
        cancel.set()
    outcome = run_command(
        "sleep 30", time_limit=time_limit, env={}, cwd=os.getcwd(), sink=_ignore, cancel=cancel
    )
    cancel.close()
    assert (outcome.status, outcome.exit_code, outcome.ended_by) == ending
