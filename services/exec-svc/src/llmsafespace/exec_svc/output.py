"""Publishing one execution's output on its subject: sequenced, coalesced, capped."""

import asyncio
import json
import time
from datetime import datetime
from typing import Any

from nats.aio.client import Client as NatsClient

from llmsafespace.contracts import (
    Contract,
    DisplayChunk,
    EndedMarker,
    ExecutionResult,
    OutputChunk,
    StartedMarker,
    StreamName,
    TruncatedMarker,
    subjects,
)

from .metrics import STREAMED_BYTES

FLUSH_INTERVAL = 0.02  # seconds output may wait to be coalesced with more
FIRST_WAIT = 0.001  # seconds a burst's first write waits (see OutputPublisher)
CHUNK_BYTES = 32 * 1024  # a chunk is sent once this much is waiting


class OutputPublisher:
    """`started`, then `output` chunks and `display` results (one `seq` for all), maybe
    `truncated`, then `ended`.

    Output is coalesced: the first write after a quiet FLUSH_INTERVAL waits FIRST_WAIT,
    later ones wait out the interval (or CHUNK_BYTES), and they share a message, so a
    burst is not one message per write, and stdout and stderr interleave at that
    granularity, as in a notebook. FIRST_WAIT lets a quick execution's output leave with
    its end, in one write to the bus, so its follower wakes once for all of it (about a
    tenth of a millisecond of a `print(1)` over a socket); for a longer one, it is a
    millisecond added to its first output. A result flushes the output before it, then
    goes out as it is (its size counts as output). Past `limit_bytes` of output the
    stream says `truncated` once and drops the rest; the result still follows.
    """

    def __init__(
        self, connection: NatsClient, sandbox_id: str, execution_id: str, limit_bytes: int
    ) -> None:
        self._nc = connection
        self._js = connection.jetstream()
        self._subject = subjects.output(sandbox_id, execution_id)
        self._limit = limit_bytes
        self._seq = 0
        self._sent_bytes = 0
        self._truncated = False
        self._pending: dict[StreamName, list[str]] = {name: [] for name in StreamName}
        self._pending_bytes = 0
        # The flush to come, and when (uvloop's handle for a delay under half a
        # millisecond has no `when()` of its own).
        self._timer: asyncio.Handle | None = None
        self._due = 0.0
        self._lock = asyncio.Lock()
        self._last_flush = float("-inf")
        self._started: StartedMarker | None = None  # not yet published

    @property
    def truncated(self) -> bool:
        return self._truncated

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    async def _publish(self, message: Contract) -> None:
        await self._nc.publish(self._subject, message.model_dump_json(by_alias=True).encode())

    async def started(self, timeout: float, started_at: datetime, durable: bool = False) -> None:
        """The first message; ``durable``: stored in the stream before returning, so a
        follower told of the execution afterwards finds it. Otherwise it waits like output
        does and leaves with the first flush (within FLUSH_INTERVAL): a quick execution's
        start and first output share one write."""
        marker = StartedMarker(seq=self._next(), timeout=timeout, started_at=started_at)
        if durable:
            await self._js.publish(self._subject, marker.model_dump_json(by_alias=True).encode())
            return
        async with self._lock:
            self._started = marker
            self._flush_within(FLUSH_INTERVAL)

    async def output(self, stream: str, text: str) -> None:
        if self._truncated:
            return
        async with self._lock:
            self._pending[StreamName(stream)].append(text)
            self._pending_bytes += len(text.encode())
            if self._pending_bytes >= CHUNK_BYTES:
                await self._flush()
                return
            quiet_since = asyncio.get_running_loop().time() - self._last_flush
            if quiet_since >= FLUSH_INTERVAL:
                self._flush_within(FIRST_WAIT)
            else:
                self._flush_within(FLUSH_INTERVAL - quiet_since)

    def _flush_within(self, delay: float) -> None:
        """A flush `delay` seconds from now, unless one is due sooner already."""
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        if self._timer is not None:
            if self._due <= due:
                return
            self._timer.cancel()  # e.g. the `started` marker's: it leaves with this output
        self._timer = loop.call_later(delay, self._flush_soon)
        self._due = due

    async def display(self, bundle: dict[str, Any]) -> None:
        """One rich result, after the output that came before it."""
        async with self._lock:
            await self._flush()
            if self._truncated:
                return
            size = len(json.dumps(bundle.get("data")).encode())
            if self._sent_bytes + size > self._limit:
                self._truncated = True
                await self._publish(TruncatedMarker(seq=self._next(), limit_bytes=self._limit))
                return
            self._sent_bytes += size
            STREAMED_BYTES.inc(size)
            chunk = DisplayChunk.model_validate(
                {**bundle, "seq": self._next(), "timestamp": int(time.time() * 1000)}
            )
            await self._publish(chunk)

    def _flush_soon(self) -> None:
        self._timer = None
        asyncio.get_running_loop().create_task(self._flush_locked())

    async def _flush_locked(self) -> None:
        async with self._lock:
            await self._flush()

    async def _flush(self) -> None:
        self._last_flush = asyncio.get_running_loop().time()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._started is not None:
            await self._publish(self._started)
            self._started = None
        if self._truncated:
            return
        if self._sent_bytes + self._pending_bytes > self._limit:
            self._truncated = True
            await self._publish(TruncatedMarker(seq=self._next(), limit_bytes=self._limit))
            return
        self._sent_bytes += self._pending_bytes
        STREAMED_BYTES.inc(self._pending_bytes)
        self._pending_bytes = 0
        for name, parts in self._pending.items():
            if parts:
                content = "".join(parts)
                parts.clear()
                await self._publish(
                    OutputChunk(
                        seq=self._next(),
                        stream=name,
                        content=content,
                        timestamp=int(time.time() * 1000),
                    )
                )

    async def ended(self, result: ExecutionResult) -> None:
        """Flush what is waiting, then the terminal marker, stored durably before returning."""
        async with self._lock:
            await self._flush()
            marker = EndedMarker(seq=self._next(), result=result)
            await self._js.publish(self._subject, marker.model_dump_json(by_alias=True).encode())
