"""Non-blocking, buffered reading of a child's output pipes into a sink, and the wait for
a child that streams its output meanwhile (one selector, on the request's own thread)."""

from __future__ import annotations

import codecs
import os
import time
from collections.abc import Iterable

from .cancel import Cancel
from .outcome import Sink

CHUNK = 64 * 1024


def discard(stream: str, text: str) -> None:
    """Drop output that arrives while no execution listens."""


class PipeReader:
    """Reads ``fd`` when asked (``read_once`` on readiness) and hands decoded text to the
    current sink."""

    def __init__(self, fd: int, stream: str) -> None:
        self.fd = fd
        self.stream = stream
        self.sink: Sink = discard
        self.eof = False
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        os.set_blocking(fd, False)

    def read_once(self) -> bool:
        """Read one chunk; False when nothing (more) is available now."""
        if self.eof:
            return False
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
            self._emit(self._decoder.decode(b"", final=True))

    def drain(self) -> None:
        """Deliver everything already written to the pipe, without blocking."""
        while self.read_once():
            pass

    def stop(self) -> None:
        """Drain, then stop reading; the owner closes the fd."""
        self.drain()
        self._finish()


def stream_until(
    readers: Iterable[PipeReader], exited: int, cancel: Cancel, deadline: float
) -> str:
    """Stream ``readers`` until the fd ``exited`` is readable ("exit"), ``cancel`` is set
    ("cancel") or the monotonic ``deadline`` passes ("deadline")."""
    import selectors  # commands and terminals only: the idle agent stays without it

    with selectors.DefaultSelector() as selector:
        for reader in readers:
            selector.register(reader.fd, selectors.EVENT_READ, reader)
        selector.register(exited, selectors.EVENT_READ, "exit")
        selector.register(cancel.fileno(), selectors.EVENT_READ, "cancel")
        while True:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                return "deadline"
            ended = set()
            for key, _ in selector.select(timeout):
                if isinstance(key.data, PipeReader):
                    if not key.data.read_once() and key.data.eof:
                        selector.unregister(key.fd)
                else:
                    ended.add(key.data)
            for reason in ("exit", "cancel"):  # an exit wins over a cancel at the same time
                if reason in ended:
                    return reason
