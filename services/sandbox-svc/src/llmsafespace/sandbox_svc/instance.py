"""This sandbox-svc process's liveness, visible to every replica through PostgreSQL.

Each instance holds a session advisory lock `(locks.SANDBOX_INSTANCE, key)` on a connection
of its own for as long as it lives, and stamps the rows it creates with its key. When the
process dies — even by SIGKILL — PostgreSQL ends the session and frees the lock, so a
`creating` row whose creator's lock is free was abandoned mid-create.
"""

import secrets

import asyncpg
import structlog

from llmsafespace.servicekit import locks

log = structlog.get_logger()


class Instance:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self.key = secrets.randbits(31)
        self._connection: asyncpg.Connection | None = None

    async def hold(self) -> None:
        """Take the lock, or take it again on a new connection after losing the old one
        (a PostgreSQL restart ends every session)."""
        if self._connection is not None and not self._connection.is_closed():
            return
        connection = await asyncpg.connect(self._dsn)
        await connection.execute(
            "SELECT pg_advisory_lock($1, $2)", locks.SANDBOX_INSTANCE, self.key
        )
        self._connection = connection
        log.info("instance_lock_held", key=self.key)

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


async def is_alive(pool: asyncpg.Pool, key: int) -> bool:
    """Whether the instance with `key` still runs (holds its lock)."""
    async with (
        pool.acquire() as connection,
        locks.held(connection, locks.SANDBOX_INSTANCE, key, wait=False) as free,
    ):
        return not free
