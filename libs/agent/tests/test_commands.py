"""How a command's end becomes its outcome: what the reaped process used, and a command
that did not exit on its own ending `cancelled` or `timeout` (a terminal ends the same way)."""

from __future__ import annotations

import os
import resource
import time

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


def test_a_command_past_its_time_limit_times_out() -> None:
    cancel = Cancel()
    outcome = run_command(
        "sleep 30", time_limit=0.1, env={}, cwd=os.getcwd(), sink=_ignore, cancel=cancel
    )
    cancel.close()
    assert (outcome.status, outcome.exit_code, outcome.ended_by) == (
        "timeout",
        TIMEOUT_EXIT_CODE,
        "timeout",
    )


def test_a_cancelled_command_is_cancelled_not_timed_out() -> None:
    cancel = Cancel()
    cancel.set()
    outcome = run_command(
        "sleep 30", time_limit=30, env={}, cwd=os.getcwd(), sink=_ignore, cancel=cancel
    )
    cancel.close()
    assert (outcome.status, outcome.exit_code, outcome.ended_by) == (
        "cancelled",
        CANCELLED_EXIT_CODE,
        "cancelled",
    )
