"""`SandboxStore.insert` under a quota, against a real PostgreSQL (the admission is SQL
under the owner's advisory lock): what is counted, and what it costs on the create path."""

from collections.abc import AsyncIterator
from importlib.resources import files

import asyncpg
import pytest

from llmsafespace.contracts import (
    CreateSandboxRequest,
    ErrorCode,
    PoolReservation,
    SandboxStatus,
    ServiceError,
)
from llmsafespace.devstack.postgres_server import PostgresServer
from llmsafespace.devstack.servers import scratch_server
from llmsafespace.sandbox_svc.quota import Quota
from llmsafespace.sandbox_svc.store import SandboxStore
from llmsafespace.servicekit import RecordingPool
from llmsafespace.servicekit.db import connect, migrate

OWNER = "usr-aaaaaaaaaaaa"
MI = 2**20
QUOTA = Quota(sandboxes=10, memory_bytes=1024 * MI)


@pytest.fixture(scope="module")
async def database() -> AsyncIterator[str]:
    async with scratch_server(PostgresServer, "sandbox-store-test-") as url:
        yield url


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await connect(database)
    await pool.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    await migrate(pool, "sandbox-svc", files("llmsafespace.sandbox_svc") / "migrations")
    try:
        yield pool
    finally:
        await pool.close()


def request(memory: str) -> CreateSandboxRequest:
    return CreateSandboxRequest.model_validate({"resources": {"memory": memory}})


async def test_live_sandboxes_and_other_pools_reservations_count_against_the_quota(
    db: asyncpg.Pool,
) -> None:
    store = SandboxStore(db)
    await store.insert("sb-creating00001", OWNER, request("256Mi"), QUOTA)
    ended = await store.insert("sb-terminated001", OWNER, request("512Mi"), QUOTA)
    await store.mark_ended(ended.id, SandboxStatus.TERMINATED, None)
    await store.insert("sb-someoneelses1", "usr-bbbbbbbbbbbb", request("512Mi"), QUOTA)
    reservation = PoolReservation(
        pool=f"{OWNER}/py", owner_id=OWNER, sandboxes=2, memory_bytes=512 * MI
    )
    await store.reserve(reservation, QUOTA)
    with pytest.raises(ServiceError) as refused:
        await store.insert("sb-toomuchmemory", OWNER, request("512Mi"), QUOTA)
    assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
    # the creating sandbox and the pool's reservation; not the ended one, not another's
    assert refused.value.details == {
        "resource": "memory",
        "limit": 1024 * MI,
        "current": 768 * MI,
        "requested": 512 * MI,
    }
    await store.insert("sb-fitsexactly01", OWNER, request("256Mi"), QUOTA)


async def test_a_create_under_a_quota_reads_the_usage_in_one_statement(
    db: asyncpg.Pool,
) -> None:
    """The owner's lock, one read of what the owner holds, the insert: each a round trip
    on every ordinary user's create."""
    async with db.acquire() as conn:
        recording = RecordingPool(conn)
        store = SandboxStore(recording)  # type: ignore[arg-type]
        await store.insert("sb-onereadusage1", OWNER, request("256Mi"), QUOTA)
    assert recording.calls == ["transaction", "execute", "fetchrow", "fetchrow"]
