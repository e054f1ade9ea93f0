"""Non-blocking, buffered reading of a child's output pipe into a sink."""

from __future__ import annotations

import asyncio
import codecs
import os

from .outcome import Sink

CHUNK = 64 * 1024


def discard(stream: str, text: str) -> None:
    """Drop output that arrives while no execution listens."""


class PipeReader:
    """Reads ``fd`` whenever it is readable and hands decoded text to the current sink."""

    def __init__(self, fd: int, stream: str) -> None:
        self.fd = fd
        self.stream = stream
        self.sink: Sink = discard
        self.eof = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        os.set_blocking(fd, False)
        asyncio.get_running_loop().add_reader(fd, self._on_readable)

    def _on_readable(self) -> None:
        self._read_once()

    def _read_once(self) -> bool:
        """Read one chunk; False when nothing (more) is available now."""
        try:
            data = os.read(self.fd, CHUNK)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._finish()
            return False
        self._emit(self._decoder.decode(data))
        return True

    def _emit(self, text: str) -> None:
        if text:
            self.sink(self.stream, text)

    def _finish(self) -> None:
        if not self.eof:
            self.eof = True
            asyncio.get_running_loop().remove_reader(self.fd)
            self._emit(self._decoder.decode(b"", final=True))

    def drain(self) -> None:
        """Deliver everything already written to the pipe, without blocking."""
        while not self.eof and self._read_once():
            pass

    def stop(self) -> None:
        """Drain, then stop watching; the owner closes the fd."""
        self.drain()
        self._finish()
