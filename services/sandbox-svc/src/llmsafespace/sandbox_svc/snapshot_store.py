"""The `snapshots` table. Plain SQL; only this module spells it."""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from llmsafespace.contracts import Snapshot
from llmsafespace.servicekit import locks

from .quota import SnapshotQuota

_COLUMNS = (
    "id, owner_id, name, sandbox_id, runtime, template, metadata, env,"
    " chunks, size_bytes, stored_bytes, created_at"
)
_USAGE = (
    "SELECT count(*) AS n, coalesce(sum(size_bytes), 0)::bigint AS bytes"
    " FROM snapshots WHERE owner_id = $1 AND NOT internal"
)
# Of the chunk names in $1, those no snapshot row references: a lookup per name in the
# GIN index on `chunks` (see `_unreferenced`). `c = ANY(chunks)` read every snapshot's
# array for each name: 4.5 s for a snapshot of 200 chunks of its own among 3,000 others.
_UNREFERENCED = (
    "SELECT coalesce(array_agg(DISTINCT c), '{}') FROM unnest($1::text[]) AS c"
    " WHERE NOT EXISTS (SELECT 1 FROM snapshots WHERE chunks @> ARRAY[c])"
)
# Seconds to wait for the chunk lock: captures hold it shared for as long as a workspace
# streams, far past the pool's statement bound (`db.COMMAND_TIMEOUT`).
CHUNK_LOCK_WAIT = 3600.0


async def _unreferenced(conn: asyncpg.Connection, chunks: list[str]) -> list[str]:
    """Those of `chunks` no snapshot uses, in the caller's transaction. The planner is
    told not to scan the table: its pages look few (the arrays live out of line, in
    TOAST), so it scans them, reading every array once per name; the index reads none."""
    await conn.execute("SET LOCAL enable_seqscan = off")
    unused: list[str] = await conn.fetchval(_UNREFERENCED, chunks)
    return unused


@dataclass(frozen=True)
class StoredSnapshot:
    """A snapshot with what the public view leaves out: how to rebuild the sandbox."""

    public: Snapshot
    env: dict[str, str]
    chunks: list[str]


def _stored(row: asyncpg.Record) -> StoredSnapshot:
    env = json.loads(row["env"])
    return StoredSnapshot(
        public=Snapshot(
            id=row["id"],
            owner_id=row["owner_id"],
            name=row["name"],
            sandbox_id=row["sandbox_id"],
            runtime=row["runtime"],
            template=row["template"],
            metadata=json.loads(row["metadata"]),
            env_names=sorted(env),
            size_bytes=row["size_bytes"],
            stored_bytes=row["stored_bytes"],
            created_at=row["created_at"],
        ),
        env=env,
        chunks=list(row["chunks"]),
    )


class SnapshotStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def locked(self, key: int, *, shared: bool, wait: bool = True) -> AsyncIterator[bool]:
        """Hold a session advisory lock (shared or exclusive) for the block: snapshot
        writers share `locks.SNAPSHOT_CHUNKS`, a deletion's chunk sweep takes it alone, so a
        chunk a new snapshot reuses is never swept before that snapshot's row exists.
        Yields whether it is held (without `wait`, False while another session has it)."""
        async with (
            self._pool.acquire() as conn,
            locks.held(conn, key, shared=shared, wait=wait, timeout=CHUNK_LOCK_WAIT) as taken,
        ):
            yield taken

    async def usage(self, owner_id: str) -> tuple[int, int]:
        """How many snapshots the owner keeps, and their bytes (internal ones not counted)."""
        used = await self._pool.fetchrow(_USAGE, owner_id)
        return used["n"], used["bytes"]

    async def insert(
        self,
        snapshot: Snapshot,
        stored: StoredSnapshot,
        quota: SnapshotQuota | None,
        *,
        internal: bool = False,
    ) -> StoredSnapshot:
        """The new row; with a quota, the owner's snapshots are counted first (owner lock).
        An `internal` one (a sandbox paused by snapshot) is neither listed nor counted."""
        async with self._pool.acquire() as conn, conn.transaction():
            if quota is not None:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                    locks.SNAPSHOT_QUOTA,
                    snapshot.owner_id,
                )
                used = await conn.fetchrow(_USAGE, snapshot.owner_id)
                quota.admit(used["n"], used["bytes"], snapshot.size_bytes)
            row = await conn.fetchrow(
                "INSERT INTO snapshots (id, owner_id, name, sandbox_id, runtime, template,"
                " metadata, env, chunks, size_bytes, stored_bytes, internal)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                f" RETURNING {_COLUMNS}",
                snapshot.id,
                snapshot.owner_id,
                snapshot.name,
                snapshot.sandbox_id,
                snapshot.runtime,
                snapshot.template,
                json.dumps(snapshot.metadata),
                json.dumps(stored.env),
                stored.chunks,
                snapshot.size_bytes,
                snapshot.stored_bytes,
                internal,
            )
        return _stored(row)

    async def get(self, snapshot_id: str, *, internal: bool = False) -> StoredSnapshot | None:
        """A user's snapshot, or (`internal`) a paused sandbox's."""
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM snapshots WHERE id = $1 AND internal = $2",
            snapshot_id,
            internal,
        )
        return _stored(row) if row else None

    async def page(
        self, owner_id: str | None, limit: int, offset: int
    ) -> tuple[list[Snapshot], int]:
        """One page, newest first, and the total; `owner_id=None` means everyone's."""
        async with self._pool.acquire() as conn:
            total: int = await conn.fetchval(
                "SELECT count(*) FROM snapshots WHERE ($1::text IS NULL OR owner_id = $1)"
                " AND NOT internal",
                owner_id,
            )
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM snapshots WHERE ($1::text IS NULL OR owner_id = $1)"
                " AND NOT internal ORDER BY created_at DESC, id LIMIT $2 OFFSET $3",
                owner_id,
                limit,
                offset,
            )
        return [_stored(row).public for row in rows], total

    async def delete(self, snapshot_id: str) -> list[str]:
        """Remove the row; the chunks no other snapshot uses (to sweep, under the lock)."""
        async with self._pool.acquire() as conn, conn.transaction():
            chunks = await conn.fetchval(
                "DELETE FROM snapshots WHERE id = $1 RETURNING chunks", snapshot_id
            )
            if chunks is None:
                return []
            return await _unreferenced(conn, chunks)

    async def unreferenced(self, chunks: list[str]) -> list[str]:
        """Those of `chunks` no snapshot uses (to sweep, under the exclusive lock)."""
        async with self._pool.acquire() as conn, conn.transaction():
            return await _unreferenced(conn, chunks)
