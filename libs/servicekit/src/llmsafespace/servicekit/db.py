"""PostgreSQL: a pool, and forward-only migrations applied at start under an advisory lock.

Every wait on the server is bounded, so a server that stops answering (frozen, or its
host gone without a reset) makes callers fail in seconds (a 503, "database unavailable")
instead of hanging them: a statement may take `COMMAND_TIMEOUT` (then it is cancelled,
and the cancel gets as long again before the connection is closed instead), opening a
connection `CONNECT_TIMEOUT`. What legitimately takes longer says so with its own
`timeout=`: migrations (`MIGRATION_TIMEOUT`) and waits for an advisory lock another
session holds (`locks.held(..., timeout=)`)."""

import asyncio
from importlib.resources.abc import Traversable

import asyncpg
import structlog

from . import locks

log = structlog.get_logger()

# Seconds one statement may take (asyncpg's command_timeout), its cancel as long again:
# a caller learns of a frozen server within twice this, under the 10 s a bus request
# waits, so a service's 503 reaches the gateway before its own timeout would.
COMMAND_TIMEOUT = 4.0
CONNECT_TIMEOUT = 4.0  # seconds to open a connection (TCP, TLS, authentication)
MIGRATION_TIMEOUT = 3600.0  # seconds one migration (or the wait for another's) may take
READY_TIMEOUT = 2.0  # seconds `database_ready` waits for its answer, all told

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    service    text NOT NULL,
    version    text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, version)
)
"""


async def connect(
    dsn: str, *, min_size: int = 1, max_size: int = 10, command_timeout: float = COMMAND_TIMEOUT
) -> asyncpg.Pool:
    """A pool whose connections go back without asyncpg's reset query (advisory unlock
    all, close cursors, unlisten, reset settings): one more round trip on every use
    (~0.15 ms here, more than half of what a small statement takes through the pool),
    for session state the services never leave behind. They change no setting, listen
    to nothing and keep no cursor; their session locks go through `locks.held`, which
    closes a connection rather than return it holding one. asyncpg still rolls back a
    transaction left open. Statements and new connections are bounded (see the module)."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        reset=_keep_session,
        command_timeout=command_timeout,
        timeout=CONNECT_TIMEOUT,
    )
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to undo (see `connect`)."""


async def migrate(pool: asyncpg.Pool, service: str, migrations: Traversable) -> list[str]:
    """Apply `NNN_name.sql` files not yet recorded for `service`, in order. Returns them."""
    files = sorted(
        (entry for entry in migrations.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    applied: list[str] = []
    async with (
        pool.acquire() as conn,
        locks.held(conn, locks.MIGRATIONS, timeout=MIGRATION_TIMEOUT),
    ):
        await conn.execute(_SCHEMA)
        done = {
            row["version"]
            for row in await conn.fetch(
                "SELECT version FROM schema_migrations WHERE service = $1", service
            )
        }
        for entry in files:
            version = entry.name.removesuffix(".sql")
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(entry.read_text(), timeout=MIGRATION_TIMEOUT)
                await conn.execute(
                    "INSERT INTO schema_migrations (service, version) VALUES ($1, $2)",
                    service,
                    version,
                )
            applied.append(version)
            log.info("migration_applied", version=version)
    return applied


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means PostgreSQL cannot be reached right now (down, restarting, or a
    pooled connection it closed) rather than a fault in the query: callers get a 503."""
    if isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.PostgresConnectionError
        | asyncpg.exceptions.OperatorInterventionError,
    ):
        return True
    # asyncpg's message for a query on a connection that is already closed.
    return isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc)


async def database_ready(pool: asyncpg.Pool | None) -> bool:
    """True when the pool exists and answers `SELECT 1` within `READY_TIMEOUT`, getting a
    connection included; never raises. A probe that gets no answer closes its connection
    at once: returned to the pool, it would first wait for its cancel to be answered."""
    if pool is None:
        return False
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with pool.acquire() as conn:
                try:
                    return bool(await conn.fetchval("SELECT 1") == 1)
                except BaseException:
                    conn.terminate()
                    raise
    except Exception:
        return False
