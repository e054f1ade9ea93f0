"""File transfers with the agent: chunks one way, credits the other, so neither side
buffers more than a window of chunks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from llmsafespace.agent.frames import Op, Reply
from llmsafespace.agent.protocol import MAX_BODY, Frame, encode

from .errors import AgentUnavailable, DriverError

TRANSFER_GRACE = 60.0
"""How long one step of a transfer may wait for the agent."""


class AgentRequestError(DriverError):
    """The agent refused a request; ``code`` is a service error code when it gave one,
    ``field`` the request field at fault when there is one."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


def failure(frame: Frame) -> AgentRequestError:
    code = str(frame.get("code") or "invalid_request")
    field = frame.get("field")
    return AgentRequestError(
        code, f"{frame.get('message')}", field if isinstance(field, str) else None
    )


class Transfer:
    """One open transfer request: frames to the agent, frames back on ``queue``."""

    def __init__(
        self,
        request_id: int,
        queue: asyncio.Queue[Frame | None],
        write: Callable[[bytes], Awaitable[None]],
        close: Callable[[int], None],
    ) -> None:
        self._id = request_id
        self._queue = queue
        self._write = write
        self._close = close
        self._done = False

    async def _next(self) -> Frame:
        try:
            async with asyncio.timeout(TRANSFER_GRACE):
                frame = await self._queue.get()
        except TimeoutError as exc:
            raise AgentUnavailable("the agent stopped answering during a transfer") from exc
        if frame is None:
            raise AgentUnavailable("the agent connection was lost")
        if frame.get("type") == Reply.ERROR:
            self._finish()
            raise failure(frame)
        if frame.get("type") == Reply.RESULT:
            self._finish()
        return frame

    async def _send(self, header: dict[str, Any], body: bytes = b"") -> None:
        await self._write(encode({**header, "op": Op.DATA, "target": self._id}, body))

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._close(self._id)

    async def abort(self) -> None:
        """Give up: the agent removes what was written (or stops reading)."""
        if not self._done:
            self._finish()
            with contextlib.suppress(ConnectionError, AgentUnavailable):
                await self._send({"abort": True})


class Upload(Transfer):
    """A write into the sandbox; nothing appears under the final name before `finish`."""

    credit = 0

    async def start(self) -> None:
        ready = await self._next()
        self.credit = int(ready.get("credit", 1))

    async def send(self, chunk: bytes) -> None:
        """Send ``chunk`` in frames the agent accepts, one credit each."""
        for start in range(0, len(chunk), MAX_BODY):
            while self.credit <= 0:
                frame = await self._next()
                self.credit += int(frame.get("credit", 0))
            self.credit -= 1
            await self._send({}, chunk[start : start + MAX_BODY])

    async def finish(self, sha256: str | None) -> Frame:
        """Commit (the agent checks ``sha256``); returns the written file's info."""
        await self._send({"end": True, "sha256": sha256})
        while True:
            frame = await self._next()
            if frame.get("type") == Reply.RESULT:
                return frame


class Download(Transfer):
    """A read from the sandbox: `info` first, then chunks until None."""

    info: Frame
    sha256: str | None = None

    async def start(self) -> None:
        self.info = await self._next()

    async def read(self) -> bytes | None:
        """The next chunk (granting the agent one more), or None at the end."""
        if self._done:
            return None
        frame = await self._next()
        if frame.get("type") == Reply.RESULT:
            self.sha256 = frame.get("sha256")
            return None
        with contextlib.suppress(ConnectionError):
            await self._send({"credit": 1})
        return bytes(frame.get("body", b""))
