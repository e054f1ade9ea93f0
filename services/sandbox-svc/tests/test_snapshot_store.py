"""`SnapshotStore` against a real PostgreSQL: which chunks no snapshot uses any more, found
by the index, so a deletion among many snapshots stays far within a statement's bound; and
the sweep of stored chunks no snapshot uses, which a capture in flight holds off."""

from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path

import asyncpg
import pytest
from faststream.nats import NatsBroker

from llmsafespace.devstack.postgres_server import PostgresServer
from llmsafespace.devstack.servers import scratch_server
from llmsafespace.sandbox_svc.chunks import LocalChunkStore
from llmsafespace.sandbox_svc.snapshot_store import SnapshotStore
from llmsafespace.sandbox_svc.snapshots import Snapshots
from llmsafespace.sandbox_svc.store import SandboxStore
from llmsafespace.servicekit import BrokerConnection, Bus, locks
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


@pytest.fixture
def chunks(tmp_path: Path) -> LocalChunkStore:
    return LocalChunkStore(tmp_path / "chunks")


def _snapshots(db: asyncpg.Pool, chunks: LocalChunkStore) -> Snapshots:
    bus = Bus(BrokerConnection(NatsBroker()))  # not connected: a sweep sends nothing
    return Snapshots(SandboxStore(db), SnapshotStore(db), chunks, bus)


async def _stored(chunks: LocalChunkStore) -> set[str]:
    return {name async for names in chunks.listing(100) for name in names}


async def test_the_sweep_deletes_the_chunks_no_snapshot_uses_and_keeps_the_others(
    db: asyncpg.Pool, chunks: LocalChunkStore
) -> None:
    for n in range(1, 6):
        await chunks.put(_name(n), b"chunk")
    await _insert(db, "kept", [_name(1), _name(2)])
    assert await _snapshots(db, chunks).sweep_unused()
    assert await _stored(chunks) == {_name(1), _name(2)}


async def test_the_sweep_touches_nothing_while_a_capture_holds_the_chunk_lock(
    db: asyncpg.Pool, chunks: LocalChunkStore, database: str
) -> None:
    """A capture (on any replica) holds the lock shared until its row exists: the chunks
    it stored so far are in no row yet, and those it reuses may be in none either."""
    for n in range(1, 4):
        await chunks.put(_name(n), b"chunk")
    capture = await asyncpg.connect(database)
    try:
        async with locks.held(capture, locks.SNAPSHOT_CHUNKS, shared=True):
            assert not await _snapshots(db, chunks).sweep_unused()
            assert await _stored(chunks) == {_name(1), _name(2), _name(3)}
    finally:
        await capture.close()
    assert await _snapshots(db, chunks).sweep_unused()
    assert await _stored(chunks) == set()
