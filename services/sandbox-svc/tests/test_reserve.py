"""`cmd.sandbox.reserve` as warmpool-svc sends it, answered by sandbox-svc's own router on
FastStream's test broker: a reservation is admitted against the service's quota, recorded
and echoed; one that does not fit comes back as `quota_exceeded` with its details (so
warmpool-svc undoes its pool change) and is not recorded. The `pool_reservations` rows
are kept in a dict, admitted as the SQL admits them."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import asyncpg
import pytest
from faststream.nats import NatsBroker, TestNatsBroker

from llmsafespace.contracts import Catalog, ErrorCode, PoolReservation, ServiceError, commands
from llmsafespace.runtime import MemoryDriver
from llmsafespace.sandbox_svc.chunks import LocalChunkStore
from llmsafespace.sandbox_svc.handlers import create_router
from llmsafespace.sandbox_svc.inventory import Inventory
from llmsafespace.sandbox_svc.lifecycle import Lifecycle
from llmsafespace.sandbox_svc.quota import Quota, Usage
from llmsafespace.sandbox_svc.snapshot_store import SnapshotStore
from llmsafespace.sandbox_svc.snapshots import Snapshots
from llmsafespace.sandbox_svc.store import SandboxStore
from llmsafespace.servicekit import BrokerConnection, Bus, include_commands, middlewares

OWNER = "usr-aaaaaaaaaaaa"
MI = 2**20


class MemoryReservations:
    """`SandboxStore.reserve` over a dict: admitted against the owner's live sandboxes
    (`live`) and the owner's other pools' reservations, then recorded."""

    def __init__(self, live: Usage) -> None:
        self.live = live
        self.rows: dict[str, PoolReservation] = {}

    async def reserve(self, reservation: PoolReservation, quota: Quota | None) -> None:
        if quota is not None:
            others = [
                row
                for row in self.rows.values()
                if row.owner_id == reservation.owner_id and row.pool != reservation.pool
            ]
            usage = Usage(
                self.live.sandboxes + sum(row.sandboxes for row in others),
                self.live.memory_bytes + sum(row.memory_bytes for row in others),
                self.live.storage_bytes + sum(row.storage_bytes for row in others),
            )
            quota.admit(
                usage, reservation.memory_bytes, reservation.sandboxes, reservation.storage_bytes
            )
        self.rows[reservation.pool] = reservation


class World:
    def __init__(self, quota: Quota, tmp: Path) -> None:
        self.store = MemoryReservations(live=Usage(sandboxes=1, memory_bytes=256 * MI))
        self.broker = NatsBroker(middlewares=middlewares(), logger=None)
        self.bus = Bus(BrokerConnection(self.broker))
        store = cast(SandboxStore, self.store)
        driver = MemoryDriver()
        lifecycle = Lifecycle(store, driver, self.bus, Catalog(), quota=quota)
        inventory = Inventory(store, driver, lifecycle, Catalog(), quota)
        # Only `reserve` is sent here: the snapshot handlers' stores are never reached.
        unused = cast(asyncpg.Pool, None)
        snapshots = Snapshots(store, SnapshotStore(unused), LocalChunkStore(tmp), self.bus)
        include_commands(self.broker, create_router(lifecycle, inventory, snapshots, 4))

    async def reserve(self, pool: str, sandboxes: int, memory: int) -> PoolReservation:
        reservation = PoolReservation(
            pool=pool, owner_id=OWNER, sandboxes=sandboxes, memory_bytes=memory * MI
        )
        return await self.bus.request(commands.SANDBOX_RESERVE, reservation)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    made = World(Quota(sandboxes=4, memory_bytes=1024 * MI), tmp_path)
    async with TestNatsBroker(made.broker):
        yield made


async def test_a_reservation_within_the_quota_is_recorded_and_echoed(world: World) -> None:
    reply = await world.reserve("usr-aaaaaaaaaaaa/py", sandboxes=2, memory=512)
    assert reply == world.store.rows["usr-aaaaaaaaaaaa/py"]
    assert (reply.owner_id, reply.sandboxes, reply.memory_bytes) == (OWNER, 2, 512 * MI)


async def test_a_reservation_past_the_quota_is_refused_with_its_details(world: World) -> None:
    await world.reserve("usr-aaaaaaaaaaaa/py", sandboxes=2, memory=512)
    with pytest.raises(ServiceError) as refused:
        await world.reserve("usr-aaaaaaaaaaaa/node", sandboxes=2, memory=256)
    assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
    # one live sandbox and the other pool's two, with two more asked for: 5 > 4
    assert refused.value.details == {
        "resource": "sandboxes",
        "limit": 4,
        "current": 3,
        "requested": 2,
    }
    assert list(world.store.rows) == ["usr-aaaaaaaaaaaa/py"]


async def test_memory_past_the_quota_is_refused_even_when_the_count_fits(world: World) -> None:
    with pytest.raises(ServiceError) as refused:
        await world.reserve("usr-aaaaaaaaaaaa/py", sandboxes=1, memory=1024)
    assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
    assert refused.value.details is not None
    assert refused.value.details["resource"] == "memory"
    assert world.store.rows == {}
