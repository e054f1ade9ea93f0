"""warmpool-svc's side of the warm-claim handover (the claim ledger, the release, the
sweep) and the reservations it reports, against a real PostgreSQL (the claim is SQL),
the in-memory driver and FastStream's test broker standing in for sandbox-svc."""

import asyncio
from collections.abc import AsyncIterator
from importlib.resources import files

import asyncpg
import pytest
from faststream.nats import NatsBroker, TestNatsBroker
from prometheus_client import CollectorRegistry

from llmsafespace.contracts import (
    Caller,
    Catalog,
    ClaimWarmSandbox,
    CreateWarmPool,
    ErrorCode,
    ListWarmPools,
    PoolReservation,
    ReleaseWarmClaim,
    Resources,
    Role,
    RuntimeId,
    SecurityLevel,
    ServiceError,
    UpdateWarmPool,
    WarmPoolRef,
    WarmPoolSpec,
    WarmPoolUpdate,
    commands,
    quantity_bytes,
)
from llmsafespace.devstack.postgres_server import PostgresServer
from llmsafespace.devstack.servers import scratch_server
from llmsafespace.runtime import MemoryDriver, RuntimeOwner, RuntimeSpec
from llmsafespace.servicekit import (
    BrokerConnection,
    Bus,
    RecordingPool,
    Router,
    handles,
    include_commands,
    middlewares,
)
from llmsafespace.servicekit.db import connect, migrate
from llmsafespace.warmpool_svc.metrics import Metrics
from llmsafespace.warmpool_svc.pool_names import pool_key
from llmsafespace.warmpool_svc.pools import Pools
from llmsafespace.warmpool_svc.replenisher import Replenisher
from llmsafespace.warmpool_svc.store import PoolStore, resources_key

USER = Caller(user_id="usr-aaaaaaaaaaaa", role=Role.USER)
ADMIN = Caller(user_id="usr-adminadmin00", role=Role.ADMIN)
RESOURCES = Resources(memory="300Mi")


@pytest.fixture(scope="module")
async def database() -> AsyncIterator[str]:
    async with scratch_server(PostgresServer, "warmpool-test-") as url:
        yield url


class World:
    def __init__(self, db: asyncpg.Pool) -> None:
        self.db = db
        self.driver = MemoryDriver()
        self.store = PoolStore(db)
        self.reservations: list[PoolReservation] = []
        self.refuse = False  # sandbox-svc refuses reservations (the owner's quota is full)
        self.broker = NatsBroker(middlewares=middlewares(), logger=None)
        router = Router()
        handles(router, commands.SANDBOX_RESERVE)(self._reserve)
        include_commands(self.broker, router)
        bus = Bus(BrokerConnection(self.broker))
        metrics = Metrics(CollectorRegistry())
        self.replenisher = Replenisher(
            db, self.store, self.driver, bus, metrics, parallel_starts=4, preload_timeout=5
        )
        self.pools = Pools(self.store, self.driver, bus, Catalog(), metrics, lambda pool: None)

    async def _reserve(self, reservation: PoolReservation) -> PoolReservation:
        if self.refuse and reservation.sandboxes:
            raise ServiceError(ErrorCode.QUOTA_EXCEEDED, "over the owner's sandbox quota")
        self.reservations.append(reservation)
        return reservation

    async def pool(self, caller: Caller = ADMIN, ready: int = 1) -> list[RuntimeId]:
        """A pool with `ready` warm runtimes started (as the replenisher starts them)."""
        spec = WarmPoolSpec(name="py", minSize=0, resources=RESOURCES)
        await self.pools.create(CreateWarmPool(caller=caller, spec=spec))
        key = (await self.store.pools())[0]["name"]
        ids = []
        for n in range(ready):
            runtime_id = RuntimeId(f"wp-ready{n:08d}")
            await self.store.insert_pending(runtime_id, key, spec)
            handle = await self.driver.create(
                RuntimeSpec(runtime_id=runtime_id, owner=RuntimeOwner.WARMPOOL_SVC)
            )
            assert await self.store.mark_ready(runtime_id, handle.endpoint, handle.token)
            ids.append(runtime_id)
        return ids

    async def claim(self, sandbox_id: str) -> RuntimeId | None:
        request = ClaimWarmSandbox(
            caller=USER,
            sandbox_id=sandbox_id,
            runtime="python:3.11",
            security_level=SecurityLevel.STANDARD,
            resources=RESOURCES,
        )
        return (await self.pools.claim(request)).runtime_id


@pytest.fixture
async def world(database: str) -> AsyncIterator[World]:
    db = await connect(database)
    await db.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    await migrate(db, "warmpool-svc", files("llmsafespace.warmpool_svc") / "migrations")
    created = World(db)
    try:
        async with TestNatsBroker(created.broker):
            yield created
    finally:
        await db.close()


async def test_a_second_claim_for_a_sandbox_answers_the_runtime_of_its_first(
    world: World,
) -> None:
    first, _ = await world.pool(ready=2)
    assert await world.claim("sb-claimedtwice0") == first
    assert await world.claim("sb-claimedtwice0") == first
    assert await world.claim("sb-anothersandbx") is not None  # the second is still ready


async def test_concurrent_claims_for_one_sandbox_assign_it_one_runtime(world: World) -> None:
    """A retried claim racing its first: whichever records the ledger row first wins,
    the other's assignment is undone with its statement and it answers the winner's."""
    first, second = await world.pool(ready=2)
    answers = await asyncio.gather(*(world.claim("sb-racingclaims0") for _ in range(2)))
    assert answers[0] == answers[1]
    assert answers[0] in (first, second)
    assert await world.store.assigned() == {answers[0]}
    assert await world.claim("sb-anothersandbx") is not None  # the other is still ready


async def test_a_claim_is_one_statement_hit_or_miss(world: World) -> None:
    """The claim sits on every warm create's path: recording it in the ledger and
    assigning the runtime are one statement (one round trip, atomic on its own), not a
    transaction of several."""
    await world.pool(ready=1)
    async with world.db.acquire() as conn:
        recording = RecordingPool(conn)
        store = PoolStore(recording)  # type: ignore[arg-type]
        args = ("python:3.11", SecurityLevel.STANDARD, RESOURCES, USER.user_id)
        assert await store.claim(*args, "sb-onestatement0") is not None
        assert await store.claim(*args, "sb-missingclaim0") is None
    assert recording.calls == ["fetchrow", "fetchrow"]


async def test_a_release_destroys_what_the_claim_assigned_and_a_later_claim_misses(
    world: World,
) -> None:
    (runtime_id,) = await world.pool(ready=1)
    assert await world.claim("sb-releasedclaim") == runtime_id
    released = await world.pools.release(ReleaseWarmClaim(sandbox_id="sb-releasedclaim"))
    assert released.runtime_id == runtime_id
    assert await world.driver.inspect(runtime_id) is None
    assert runtime_id not in await world.store.known_ids()
    assert await world.claim("sb-releasedclaim") is None
    again = await world.pools.release(ReleaseWarmClaim(sandbox_id="sb-releasedclaim"))
    assert again.runtime_id is None  # idempotent


async def test_a_claim_arriving_after_its_release_misses_and_leaves_the_pool_alone(
    world: World,
) -> None:
    """sandbox-svc gave up on a slow claim and released it before warmpool-svc got to it:
    the late claim must not hand out (and so leak) a runtime."""
    (runtime_id,) = await world.pool(ready=1)
    await world.pools.release(ReleaseWarmClaim(sandbox_id="sb-latelateclaim0"))
    assert await world.claim("sb-latelateclaim0") is None
    assert await world.claim("sb-someoneelse00") == runtime_id


async def test_the_sweep_destroys_by_owner_label_and_never_an_assigned_runtime(
    world: World,
) -> None:
    """The sweep asks nobody and waits for nothing: a runtime it owns without a row goes
    (whatever its id looks like), an assigned one stays however old its claim, and one
    another service owns is never its to destroy (even named like a warm one)."""
    (assigned,) = await world.pool(ready=1)
    assert await world.claim("sb-adoptedruntim") == assigned
    await world.db.execute("UPDATE warm_sandboxes SET assigned_at = now() - interval '1 day'")
    orphan = await world.driver.create(
        RuntimeSpec(runtime_id="leftover", owner=RuntimeOwner.WARMPOOL_SVC)
    )
    foreign = await world.driver.create(
        RuntimeSpec(runtime_id="wp-notwarmpools0", owner=RuntimeOwner.SANDBOX_SVC)
    )
    await world.replenisher._sweep_orphans()
    assert await world.driver.inspect(assigned) is not None
    assert await world.driver.inspect(orphan.runtime_id) is None
    assert await world.driver.inspect(foreign.runtime_id) is not None
    assert assigned in await world.store.assigned()


async def test_the_sweep_forgets_an_assigned_row_once_its_runtime_is_gone(world: World) -> None:
    (assigned,) = await world.pool(ready=1)
    await world.claim("sb-endedsandbox0")
    await world.driver.destroy(assigned)  # sandbox-svc ended the sandbox
    await world.replenisher._sweep_orphans()
    assert await world.store.assigned() == set()


async def test_an_ordinary_users_pool_reports_its_reservation_and_its_deletion(
    world: World,
) -> None:
    await world.pool(caller=USER, ready=0)
    update = UpdateWarmPool(caller=USER, name="py", update=WarmPoolUpdate(minSize=2))
    await world.pools.update(update)
    await world.pools.delete(WarmPoolRef(caller=USER, name="py"))
    memory = quantity_bytes(RESOURCES.memory)
    storage = quantity_bytes(RESOURCES.ephemeral_storage)
    reported = [
        (r.owner_id, r.sandboxes, r.memory_bytes, r.storage_bytes) for r in world.reservations
    ]
    assert reported == [
        (USER.user_id, 0, 0, 0),
        (USER.user_id, 2, 2 * memory, 2 * storage),
        (USER.user_id, 0, 0, 0),
    ]
    await world.replenisher._reserve_again()  # at a start: every pool again (none left)
    assert len(world.reservations) == 3


async def test_a_reservation_sandbox_svc_refuses_undoes_the_pool_change(world: World) -> None:
    world.refuse = True
    spec = WarmPoolSpec(name="py", minSize=2, resources=RESOURCES)
    with pytest.raises(ServiceError) as refused:
        await world.pools.create(CreateWarmPool(caller=USER, spec=spec))
    assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
    assert await world.store.pools() == []


async def test_an_admins_shared_pool_reserves_nothing(world: World) -> None:
    await world.pool(caller=ADMIN, ready=0)
    assert world.reservations == []


async def test_a_pool_stored_before_its_name_was_reserved_stops_no_other_pool(
    world: World,
) -> None:
    """A pool named `status` (created before that name was reserved) no longer validates:
    the replenisher skips it, so the other pools are still reported, tended and listed."""
    await world.pool(caller=USER, ready=0)
    await world.pools.update(
        UpdateWarmPool(caller=USER, name="py", update=WarmPoolUpdate(minSize=1))
    )
    valid = WarmPoolSpec(name="placeholder", minSize=1, resources=RESOURCES)
    stored = valid.model_dump_json(by_alias=True).replace('"placeholder"', '"status"')
    await world.db.execute(
        "INSERT INTO warm_pools (name, owner_id, shared, spec, runtime, security_level,"
        " resources, desired) VALUES ($1, $2, false, $3, $4, $5, $6, 1)",
        pool_key(USER, "status"),
        USER.user_id,
        stored,
        valid.runtime,
        valid.security_level.value,
        resources_key(valid.resources),
    )
    world.reservations.clear()
    assert await world.replenisher._reserve_again()
    assert [r.sandboxes for r in world.reservations] == [1]  # py's; status keeps its last
    for row in await world.store.pools():
        await world.replenisher._tend_locked(row["name"])
    assert [spec.pool for spec in world.driver.created] == [pool_key(USER, "py")]
    listed = await world.pools.list(ListWarmPools(caller=USER))
    assert [pool.name for pool in listed.pools] == ["py"]
