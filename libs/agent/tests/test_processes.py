"""Watching a child exit: with a pidfd, and with a thread where the kernel has none (gVisor)."""

from __future__ import annotations

import os
import select
import subprocess
from collections.abc import Callable

import pytest

from llmsafespace.agent.processes import exit_fd, exit_fd_thread


def _spawn() -> subprocess.Popen[bytes]:
    """A child that exits with 7 once a line arrives on its stdin."""
    return subprocess.Popen(["/bin/sh", "-c", "read line; exit 7"], stdin=subprocess.PIPE)


def _reap(pid: int) -> tuple[int, int]:
    return os.waitpid(pid, os.WNOHANG)


def _readable(fd: int, timeout: float | None) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


@pytest.mark.parametrize("watch", [exit_fd, exit_fd_thread])
def test_the_fd_is_readable_when_the_child_exits_and_leaves_it_unreaped(
    watch: Callable[[int], int],
) -> None:
    child = _spawn()
    assert child.stdin is not None
    exited = watch(child.pid)
    assert not _readable(exited, 0)
    child.stdin.write(b"go\n")
    child.stdin.close()
    assert _readable(exited, None)
    os.close(exited)
    assert _reap(child.pid) == (child.pid, 7 << 8)  # exited, and still ours to reap
    child.returncode = 7
