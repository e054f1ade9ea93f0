"""The services' PostgreSQL pool and their session advisory locks, on a real server."""

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from llmsafespace.devstack.postgres_server import PostgresServer
from llmsafespace.devstack.servers import scratch_server
from llmsafespace.servicekit import locks
from llmsafespace.servicekit.db import connect, database_unavailable, migrate

KEY = 0x7E57_0001
BRIEF = 0.5  # seconds: a command timeout short enough to wait past in a test
WAITING = "SELECT count(*) FROM pg_locks WHERE NOT granted"
SESSIONS = "SELECT count(*) FROM pg_stat_activity"


@pytest.fixture(scope="module")
async def database() -> AsyncIterator[str]:
    async with scratch_server(PostgresServer, "servicekit-db-test-") as url:
        yield url


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect(database, min_size=1, max_size=1)  # one connection, reused
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def brief(database: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool whose statements may take `BRIEF` seconds (the services': 4)."""
    pool = await connect(database, min_size=1, max_size=1, command_timeout=BRIEF)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def other(database: str) -> AsyncIterator[asyncpg.Connection]:
    """Another session, to see who holds what."""
    conn = await asyncpg.connect(database)
    try:
        yield conn
    finally:
        await conn.close()


async def _free(conn: asyncpg.Connection, *key: int | str) -> bool:
    async with locks.held(conn, *key, wait=False) as taken:
        return taken


async def test_a_pooled_connection_goes_back_as_it_was_left(pool: asyncpg.Pool) -> None:
    """No reset query on release (a round trip on every use): session state stays."""
    async with pool.acquire() as conn:
        await conn.execute("SET application_name = 'kept'")
    async with pool.acquire() as conn:
        assert await conn.fetchval("SHOW application_name") == "kept"


async def test_a_lock_is_held_for_the_block_and_released_after_it(
    pool: asyncpg.Pool, other: asyncpg.Connection
) -> None:
    async with pool.acquire() as conn:
        async with locks.held(conn, KEY) as taken:
            assert taken
            assert not await _free(other, KEY)
        assert await _free(other, KEY)
        assert not conn.is_closed()


async def test_a_lock_is_released_when_its_block_fails(
    pool: asyncpg.Pool, other: asyncpg.Connection
) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError):
            async with locks.held(conn, locks.SANDBOX_INSTANCE, 7):
                raise RuntimeError("the work failed")
        assert not conn.is_closed()
    assert await _free(other, locks.SANDBOX_INSTANCE, 7)


async def test_a_lock_another_session_holds_is_not_taken(
    pool: asyncpg.Pool, other: asyncpg.Connection
) -> None:
    async with locks.held(other, "warmpool:busy"), pool.acquire() as conn:
        async with locks.held(conn, "warmpool:busy", wait=False) as taken:
            assert not taken
        async with locks.held(conn, "warmpool:idle", wait=False) as taken:
            assert taken


async def test_shared_holders_exclude_an_exclusive_one(
    pool: asyncpg.Pool, other: asyncpg.Connection
) -> None:
    async with (
        pool.acquire() as conn,
        locks.held(conn, KEY, shared=True),
        locks.held(other, KEY, shared=True, wait=False) as also,
    ):
        assert also
    assert await _free(other, KEY)


async def test_a_lock_cut_short_closes_its_connection_so_nothing_stays_held(
    pool: asyncpg.Pool, other: asyncpg.Connection
) -> None:
    """Cancelled while waiting, the lock may have been granted all the same: the
    connection is closed rather than returned to the pool with it."""
    async with locks.held(other, KEY), pool.acquire() as conn:
        session = conn.get_server_pid()
        waiting = asyncio.create_task(_hold(conn))
        async with asyncio.timeout(30):
            while not await _count(other, WAITING):  # noqa: ASYNC110 (a server's: no event)
                await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    async with asyncio.timeout(30):
        while await _count(other, f"{SESSIONS} WHERE pid = {session}"):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    async with pool.acquire() as conn:  # a new session, holding nothing
        assert conn.get_server_pid() != session
        assert not await _count(conn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")


async def _hold(conn: asyncpg.Connection, timeout: float | None = None) -> None:
    async with locks.held(conn, KEY, timeout=timeout):
        pass


async def _count(conn: asyncpg.Connection, query: str) -> int:
    count: int = await conn.fetchval(query)
    return count


async def test_a_statement_past_the_command_timeout_is_cut_short_as_unavailable(
    brief: asyncpg.Pool,
) -> None:
    """A server that does not answer in time is an outage to callers (503), not a hang;
    the statement is cancelled on the server and the pool goes on."""
    with pytest.raises(TimeoutError) as cut:
        async with asyncio.timeout(10 * BRIEF):
            await brief.fetchval("SELECT pg_sleep(30)")
    assert database_unavailable(cut.value)
    assert await brief.fetchval("SELECT 1") == 1


async def test_a_lock_wait_given_its_own_timeout_outlasts_the_command_timeout(
    brief: asyncpg.Pool, other: asyncpg.Connection
) -> None:
    """Waiting for a lock is waiting for another session's work, not for the server."""
    async with brief.acquire() as conn:
        async with locks.held(other, KEY):
            waiting = asyncio.create_task(_hold(conn, timeout=30))
            await asyncio.sleep(3 * BRIEF)
            assert not waiting.done()
        await asyncio.wait_for(waiting, 30)
        assert not conn.is_closed()


async def test_a_migration_may_take_longer_than_a_statement(
    brief: asyncpg.Pool, tmp_path: Path
) -> None:
    (tmp_path / "001_slow.sql").write_text(f"SELECT pg_sleep({3 * BRIEF})")
    applied = await migrate(brief, f"slow-{secrets.token_hex(4)}", tmp_path)
    assert applied == ["001_slow"]
