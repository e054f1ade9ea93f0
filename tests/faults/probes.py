"""Looking at what a fault left behind: conditions polled with a bound, runtimes, processes."""

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from llmsafespace.devstack import Stack
from llmsafespace.runtime.local.cgroups import Cgroups
from llmsafespace.runtime.local.layout import Layout

WAIT = 60.0  # seconds a recovery may take on a loaded 2-core machine before it is a hang


async def eventually(check: Callable[[], Awaitable[bool]], within: float = WAIT) -> None:
    """Poll `check` until it holds; fail (not hang) after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"{check.__name__} did not hold within {within:.0f} s")
        await asyncio.sleep(0.2)


def runtime_ids(stack: Stack) -> set[str]:
    """The sandbox runtimes the local driver has state for."""
    return set(Layout(stack.runtime_dir).sandbox_ids())


def frozen_runtime(stack: Stack, sandbox_id: str) -> bool:
    """Whether the local driver's freezer holds the sandbox (frozen, or freezing)."""
    meta = Layout(stack.runtime_dir).read_meta(sandbox_id)
    cgroups = Cgroups.detect()
    return meta is not None and cgroups is not None and cgroups.frozen(meta.uid)


def processes_naming(text: str) -> list[int]:
    """Live (non-zombie) processes whose command line names `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if text.encode() not in (entry / "cmdline").read_bytes():
                continue
            if "State:\tZ" in (entry / "status").read_text():
                continue
        except OSError:
            continue
        found.append(int(entry.name))
    return found


def _with_children(pid: int) -> list[int]:
    """`pid` and its direct children (a PostgreSQL postmaster's backends and workers)."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


@contextlib.contextmanager
def frozen(pid: int, at_most: float = 300.0) -> Iterator[None]:
    """A server that stops answering without going away: `pid` and its children are
    SIGSTOPped for the block (their sockets stay open, connections are accepted into the
    backlog, nothing is answered), then SIGCONTed. A timer thaws them after `at_most`
    seconds whatever happens to the test's event loop."""
    pids = _with_children(pid)
    thaw = threading.Timer(at_most, _signal_all, (pids, signal.SIGCONT))
    thaw.daemon = True
    _signal_all(pids, signal.SIGSTOP)
    thaw.start()
    try:
        yield
    finally:
        thaw.cancel()
        _signal_all(pids, signal.SIGCONT)
