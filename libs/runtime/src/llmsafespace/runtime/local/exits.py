"""Sandboxes of one runtime dir whose process ended on its own (the agent was OOM-killed,
crashed or was killed): reported the moment it happens, through a pidfd per sandbox."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Container

from llmsafespace.contracts.ids import RuntimeId

from ..driver import SandboxFailure
from .layout import Layout
from .processes import is_alive, switching_uid

REASON = "the sandbox's agent exited (killed, out of memory, or crashed)"


class ExitWatch:
    """Holds a pidfd for each running sandbox; rescans the runtime dir every ``interval``
    for sandboxes started since (by this process or another on the same dir)."""

    def __init__(self, layout: Layout, destroyed: Container[str], interval: float) -> None:
        self._layout = layout
        self._destroyed = destroyed
        self._interval = interval
        self._watched: dict[str, int] = {}
        self._ended: asyncio.Queue[str] = asyncio.Queue()

    def _watch(self, sandbox_id: str) -> None:
        meta = self._layout.read_meta(sandbox_id)
        if meta is None or not meta.pid:
            return  # still starting: its pid is not recorded yet
        try:
            pidfd = os.pidfd_open(meta.pid)
        except OSError:
            pidfd = None
        if pidfd is not None and switching_uid(meta.pid):
            os.close(pidfd)  # not the sandbox's uid yet, not ended: seen at the next rescan
            return
        if pidfd is None or not is_alive(meta.pid, meta.uid):  # checked after the open:
            if pidfd is not None:  # the pidfd is then known to be the sandbox's process
                os.close(pidfd)
            self._watched[sandbox_id] = -1
            self._ended.put_nowait(sandbox_id)
            return
        self._watched[sandbox_id] = pidfd
        asyncio.get_running_loop().add_reader(pidfd, self._exited, sandbox_id)

    def _exited(self, sandbox_id: str) -> None:
        self._forget(sandbox_id, keep=True)
        self._ended.put_nowait(sandbox_id)

    def _forget(self, sandbox_id: str, *, keep: bool = False) -> None:
        pidfd = self._watched.pop(sandbox_id, -1)
        if keep:
            self._watched[sandbox_id] = -1  # ended: never watched again
        if pidfd >= 0:
            asyncio.get_running_loop().remove_reader(pidfd)
            os.close(pidfd)

    def _rescan(self) -> None:
        present = set(self._layout.sandbox_ids())
        for sandbox_id in present - self._watched.keys():
            self._watch(sandbox_id)
        for sandbox_id in self._watched.keys() - present:
            self._forget(sandbox_id)  # removed: its id may be used again

    async def run(self) -> AsyncGenerator[SandboxFailure, None]:
        """Yield each sandbox whose process ended and that this driver did not destroy."""
        try:
            while True:
                self._rescan()
                try:
                    sandbox_id = await asyncio.wait_for(self._ended.get(), self._interval)
                except TimeoutError:
                    continue
                if sandbox_id not in self._destroyed:
                    yield SandboxFailure(RuntimeId(sandbox_id), REASON)
        finally:
            for sandbox_id in list(self._watched):
                self._forget(sandbox_id)
