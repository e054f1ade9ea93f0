"""Looking at what a fault left behind: conditions polled with a bound, runtimes, processes."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from llmsafespace.devstack import Stack
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
