"""Watching a child exit: with a pidfd, and with a thread where the kernel has none (gVisor)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable

import pytest

from llmsafespace.agent.processes import exit_watch, exit_watch_thread


def _spawn() -> subprocess.Popen[bytes]:
    """A child that exits with 7 once a line arrives on its stdin."""
    return subprocess.Popen(["/bin/sh", "-c", "read line; exit 7"], stdin=subprocess.PIPE)


def _reap(pid: int) -> tuple[int, int]:
    return os.waitpid(pid, os.WNOHANG)


@pytest.mark.parametrize("watch", [exit_watch, exit_watch_thread])
async def test_the_watch_ends_when_the_child_exits_and_leaves_it_unreaped(
    watch: Callable[[int], asyncio.Future[None]],
) -> None:
    child = _spawn()
    assert child.stdin is not None
    exited = watch(child.pid)
    assert not exited.done()
    child.stdin.write(b"go\n")
    child.stdin.close()
    await exited
    assert _reap(child.pid) == (child.pid, 7 << 8)  # exited, and still ours to reap
    child.returncode = 7
