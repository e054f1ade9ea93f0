"""Every PostgreSQL advisory lock the services take, named in one place.

All services share one database, so two locks that happen to use the same key
serialise (or skip) each other's unrelated work. PostgreSQL has two key spaces that do
not overlap: one bigint (`pg_advisory_lock(key)`) and two int4s
(`pg_advisory_lock(class, key)`). The one-key locks below are whole-database jobs; the
classes are families of two-key locks whose second key is per item (`hashtext(owner)`,
an instance key). A warm pool's replenisher takes a one-key lock per pool at
`hashtextextended('warmpool:' || name, 0)`: a 64-bit hash, so it meets these keys only
by a negligible chance. `tests/test_locks.py` checks that no two keys here are equal.

Session locks are taken with `held`, which releases them or else closes the connection:
pooled connections go back to their pool without a reset query (see `db.connect`), so a
lock left behind would stay with the connection."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

# One-key locks.
MIGRATIONS = 0x115AFE  # every service's migrations, one at a time
SANDBOX_REAPER = 0x5AFE_0001  # sandbox-svc: one reaper pass across replicas
SNAPSHOT_CHUNKS = 0x5AFE_0002  # sandbox-svc: writers share it, a chunk sweep takes it alone
WARMPOOL_SWEEP = 0x5AFE_0003  # warmpool-svc: one sweep of warm runtimes across replicas

# Two-key lock classes: (class, per-item key).
SANDBOX_INSTANCE = 0x5AFE  # (class, instance key): held by a live sandbox-svc process
OWNER_QUOTA = 0x5A0D  # (class, hashtext(owner)): a sandbox or pool create's quota check
SNAPSHOT_QUOTA = 0x5A0E  # (class, hashtext(owner)): a snapshot's quota check


@asynccontextmanager
async def held(
    conn: asyncpg.Connection,
    *key: int | str,
    wait: bool = True,
    shared: bool = False,
    timeout: float | None = None,
) -> AsyncIterator[bool]:
    """A session advisory lock on `key` (one bigint, two int4s, or a text hashed to a
    bigint by `hashtextextended`) for the block; yields whether it is held (without
    `wait`, False when another session has it: then nothing is held). It is released at
    the end; if the lock or its release is cut short (an error, a cancellation), the
    connection is closed instead, which releases whatever it held. `timeout`: seconds to
    wait for it (None: the connection's statement bound, `db.COMMAND_TIMEOUT` in a pool),
    for a lock held as long as some work takes."""
    args = ", ".join(
        f"hashtextextended(${n}, 0)" if isinstance(part, str) else f"${n}"
        for n, part in enumerate(key, 1)
    )
    mode = "_shared" if shared else ""
    take = f"SELECT pg_{'' if wait else 'try_'}advisory_lock{mode}({args})"
    try:
        taken = await conn.fetchval(take, *key, timeout=timeout)
    except BaseException:
        conn.terminate()
        raise
    if not (wait or taken):
        yield False
        return
    try:
        yield True
    finally:
        try:
            await conn.execute(f"SELECT pg_advisory_unlock{mode}({args})", *key)
        except BaseException:
            conn.terminate()
            raise
