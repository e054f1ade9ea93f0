"""`SnapshotStore` against a real PostgreSQL: which chunks no snapshot uses any more, found
by the index, so a deletion among many snapshots stays far within a statement's bound."""

from collections.abc import AsyncIterator
from importlib.resources import files

import asyncpg
import pytest

from llmsafespace.devstack.postgres_server import PostgresServer
from llmsafespace.devstack.servers import scratch_server
from llmsafespace.sandbox_svc.snapshot_store import SnapshotStore
from llmsafespace.servicekit.db import connect, migrate

OTHERS = 1000  # snapshots of 200 chunks each: the old query read them all once per name
BRIEF = 0.5  # seconds a statement may take here (the services': 4)


@pytest.fixture(scope="module")
async def database() -> AsyncIterator[str]:
    async with scratch_server(PostgresServer, "snapshot-store-test-") as url:
        yield url


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect(database, command_timeout=BRIEF)
    await pool.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    await migrate(pool, "sandbox-svc", files("llmsafespace.sandbox_svc") / "migrations")
    try:
        yield pool
    finally:
        await pool.close()


def _name(n: int) -> str:
    return f"{n:064x}"


async def _insert(pool: asyncpg.Pool, snapshot_id: str, chunks: list[str]) -> None:
    await pool.execute(
        "INSERT INTO snapshots (id, owner_id, name, sandbox_id, runtime, metadata, env,"
        " chunks, size_bytes, stored_bytes) VALUES ($1, 'usr-aaaaaaaaaaaa', 'n',"
        " 'sb-aaaaaaaaaaaa', 'python:3.11', '{}', '{}', $2, 0, 0)",
        snapshot_id,
        chunks,
    )


async def test_a_snapshot_deleted_among_many_gives_its_own_chunks_in_a_brief_statement(
    db: asyncpg.Pool,
) -> None:
    await db.execute(
        "INSERT INTO snapshots (id, owner_id, name, sandbox_id, runtime, metadata, env,"
        " chunks, size_bytes, stored_bytes)"
        " SELECT 'other-' || i, 'usr-bbbbbbbbbbbb', 'n', 'sb-bbbbbbbbbbbb', 'python:3.11',"
        " '{}', '{}', ARRAY(SELECT lpad(to_hex(i * 1000 + j), 64, 'f')"
        " FROM generate_series(1, 200) AS j), 0, 0 FROM generate_series(1, $1) AS i",
        OTHERS,
        timeout=120,
    )
    await db.execute("ANALYZE snapshots")
    own = [_name(n) for n in range(200)]
    await _insert(db, "mine", own)
    unused = await SnapshotStore(db).delete("mine")
    assert sorted(unused) == own


async def test_chunks_another_snapshot_uses_are_kept(db: asyncpg.Pool) -> None:
    await _insert(db, "first", [_name(1), _name(2), _name(3)])
    await _insert(db, "second", [_name(3), _name(4)])
    store = SnapshotStore(db)
    assert sorted(await store.unreferenced([_name(n) for n in range(1, 6)])) == [_name(5)]
    assert sorted(await store.delete("first")) == [_name(1), _name(2)]
    assert await store.delete("first") == []
    assert sorted(await store.delete("second")) == [_name(3), _name(4)]
