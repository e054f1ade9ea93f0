"""Which credentials this replica may take as live without asking Redis again.

A request whose caller counts no rate limit (an admin, limits off, a socket's `ping`)
needs Redis for one answer only: whether its credential's cache entry still exists
(revoking a key deletes it, see `accounts`). Asked on every request, that answer was a
round trip on every execution's path. A replica now trusts an entry Redis confirmed for
TRUST_SECONDS, and only while it hears Redis's invalidations:

- One connection per replica has Redis's client-side-caching tracking on, in broadcast
  mode for the cache entries' prefix, redirected to itself, subscribed to the
  invalidation channel. Redis reports every change to an entry, whoever makes it (a
  revocation on any replica or by the admin command, an expiry, a refill), to that
  connection before it answers the command that made it. The replica forgets that
  entry's confirmation as it hears of it.
- A confirmation counts only if no invalidation was heard between asking and answering.
- While that connection is down, nothing is trusted: every request asks Redis, as before.
- TRUST_SECONDS bounds what anything unforeseen could cost: a revoked key is refused
  within it at the latest, on every replica.
"""

import asyncio
import time

import redis.asyncio as aioredis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .accounts import REMEMBERED_MAX  # confirmations kept too (oldest forgotten first)

TRUST_SECONDS = 1.0
RETRY_SECONDS = 1.0  # between attempts to hear invalidations again
CHANNEL = "__redis__:invalidate"
log = structlog.get_logger()


class Confirmations:
    def __init__(self, url: str, prefix: str) -> None:
        self._url = url
        self._prefix = prefix
        self._until: dict[str, float] = {}  # entry -> monotonic time its trust ends
        self._heard = 0  # invalidations heard, connections lost and made
        self._hearing = False
        self._task: asyncio.Task[None] | None = None

    def trusted(self, entry: str) -> bool:
        until = self._until.get(entry)
        return until is not None and time.monotonic() < until

    def ticket(self) -> int:
        """Take before asking Redis; give to `confirmed` with its answer."""
        return self._heard

    def confirmed(self, entry: str, ticket: int) -> None:
        """Redis said `entry` exists: trusted from now on, unless something was
        invalidated since the question was asked, or invalidations are not heard."""
        if not self._hearing or ticket != self._heard:
            return
        if len(self._until) >= REMEMBERED_MAX:
            self._until.pop(next(iter(self._until)))
        self._until[entry] = time.monotonic() + TRUST_SECONDS

    def _invalidated(self, entries: list[bytes] | None) -> None:
        self._heard += 1
        if entries is None:  # the whole database was flushed
            self._until.clear()
        for entry in entries or ():
            self._until.pop(entry.decode(), None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep_hearing())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _keep_hearing(self) -> None:
        while True:
            try:
                await self._hear()
            except Exception as exc:  # Redis gone, or refusing tracking: trust nothing
                log.warning("auth_invalidations_unheard", error=str(exc))
            await asyncio.sleep(RETRY_SECONDS)

    async def _hear(self) -> None:
        # RESP2: invalidations arrive as messages naming their entries. No retries:
        # a reconnection would have lost the tracking, so a failure ends this connection.
        client = aioredis.Redis.from_url(
            self._url, protocol=2, retry=Retry(NoBackoff(), 0), socket_keepalive=True
        )
        listener = client.pubsub()
        try:
            await listener.execute_command("CLIENT", "ID")
            own = await listener.parse_response(block=True)
            await listener.execute_command(
                "CLIENT", "TRACKING", "ON", "REDIRECT", own, "BCAST", "PREFIX", self._prefix
            )
            await listener.parse_response(block=True)  # raises if Redis refused
            await listener.subscribe(CHANNEL)
            while True:
                message = await listener.get_message(timeout=None)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    self._heard += 1  # void tickets taken while nothing was heard
                    self._hearing = True
                    log.info("auth_invalidations_heard")
                elif message["type"] == "message":
                    self._invalidated(message["data"])
        finally:
            self._hearing = False
            self._invalidated(None)
            await listener.aclose()  # type: ignore[no-untyped-call]
            await client.aclose()
