"""`Lifecycle.create` in memory: warm claims (hit, miss, skipped), cold creates, quota
admission and driver failures, with the in-memory driver, FastStream's test broker
standing in for warmpool-svc, and the `sandboxes` rows kept in a dict."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.nats import NatsBroker, NatsRouter, TestNatsBroker

from llmsafespace.contracts import (
    Caller,
    Catalog,
    ClaimResult,
    ClaimWarmSandbox,
    CreateSandbox,
    CreateSandboxRequest,
    ErrorCode,
    HoldState,
    Role,
    Sandbox,
    SandboxEventName,
    SandboxStatus,
    ServiceError,
    commands,
    quantity_bytes,
    subjects,
)
from llmsafespace.runtime import MemoryDriver, RuntimeSpec
from llmsafespace.sandbox_svc.lifecycle import Lifecycle
from llmsafespace.sandbox_svc.quota import Quota, Usage
from llmsafespace.sandbox_svc.store import Adopted
from llmsafespace.servicekit import BrokerConnection, Bus, handles, middlewares

USER = Caller(user_id="usr-aaaaaaaaaaaa", role=Role.USER)
MI = 2**20
LIVE = (SandboxStatus.CREATING, SandboxStatus.RUNNING)


class MemorySandboxStore:
    """The rows of `SandboxStore` in a dict, answering the calls `Lifecycle` makes as the
    SQL does (the quota is admitted against the owner's live rows in the insert)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def insert(
        self,
        sandbox_id: str,
        owner_id: str,
        request: CreateSandboxRequest,
        quota: Quota | None = None,
        adopted: Adopted | None = None,
    ) -> Sandbox:
        if quota is not None:
            live = [row for row in self.rows.values() if _live(row, owner_id)]
            memory = sum(quantity_bytes(row["sandbox"].resources.memory) for row in live)
            quota.admit(Usage(len(live), memory), quantity_bytes(request.resources.memory))
        now = datetime.now(UTC)
        sandbox = Sandbox(
            id=sandbox_id,
            owner_id=owner_id,
            status=SandboxStatus.CREATING if adopted is None else SandboxStatus.RUNNING,
            runtime=request.runtime,
            security_level=request.security_level,
            timeout=request.timeout,
            resources=request.resources,
            metadata=json.loads(json.dumps(request.metadata)),
            from_warm_pool=adopted is not None,
            created_at=now,
            expires_at=now + timedelta(seconds=request.timeout),
        )
        self.rows[sandbox_id] = {
            "sandbox": sandbox,
            "runtime_id": adopted.runtime_id if adopted else None,
            "endpoint": adopted.endpoint if adopted else None,
            "token": adopted.token if adopted else None,
        }
        return sandbox

    async def mark_running(
        self, sandbox_id: str, endpoint: str, token: str, *, runtime_id: str, from_warm_pool: bool
    ) -> Sandbox | None:
        row = self.rows[sandbox_id]
        if row["sandbox"].status is not SandboxStatus.CREATING:
            return None
        row.update(endpoint=endpoint, token=token, runtime_id=runtime_id)
        row["sandbox"] = row["sandbox"].model_copy(
            update={"status": SandboxStatus.RUNNING, "from_warm_pool": from_warm_pool}
        )
        return row["sandbox"]

    async def mark_ended(
        self, sandbox_id: str, status: SandboxStatus, reason: str | None
    ) -> Sandbox | None:
        row = self.rows.get(sandbox_id)
        if row is None or row["sandbox"].status not in LIVE:
            return None
        row.update(endpoint=None, token=None)
        row["sandbox"] = row["sandbox"].model_copy(
            update={"status": status, "status_reason": reason}
        )
        return row["sandbox"]

    async def get(self, sandbox_id: str) -> Sandbox | None:
        row = self.rows.get(sandbox_id)
        return None if row is None else row["sandbox"]

    async def runtime_id(self, sandbox_id: str) -> str | None:
        row = self.rows.get(sandbox_id)
        return None if row is None else row["runtime_id"]

    async def hold(self, sandbox_id: str, runtime_id: str) -> HoldState:
        row = self.rows.get(sandbox_id)
        if row is None or row["sandbox"].status not in LIVE:
            return HoldState.RELEASED
        return HoldState.HOLDS if row["runtime_id"] == runtime_id else HoldState.RELEASED


def _live(row: dict[str, Any], owner_id: str) -> bool:
    return row["sandbox"].owner_id == owner_id and row["sandbox"].status in LIVE


class WarmPools:
    """warmpool-svc's claim, answered from a list of ready runtimes."""

    def __init__(self, driver: MemoryDriver) -> None:
        self.driver = driver
        self.ready: list[str] = []
        self.claims: list[ClaimWarmSandbox] = []

    async def add(self, runtime_id: str) -> None:
        await self.driver.create(RuntimeSpec(sandbox_id=runtime_id))
        self.ready.append(runtime_id)

    async def claim(self, request: ClaimWarmSandbox) -> ClaimResult:
        self.claims.append(request)
        if not self.ready:
            return ClaimResult(hit=False)
        handle = await self.driver.inspect(self.ready.pop())
        assert handle is not None
        return ClaimResult(
            hit=True, runtime_id=handle.sandbox_id, endpoint=handle.endpoint, token=handle.token
        )


class World:
    def __init__(self, driver: MemoryDriver, quota: Quota | None) -> None:
        self.driver = driver
        self.store = MemorySandboxStore()
        self.pools = WarmPools(driver)
        self.events: list[tuple[str, SandboxStatus]] = []
        self.broker = NatsBroker(middlewares=middlewares(), logger=None)
        router = NatsRouter()
        handles(router, commands.WARMPOOL_CLAIM)(self.pools.claim)

        @router.subscriber(subjects.SANDBOX_EVENTS)
        async def event(sandbox: Sandbox) -> None:
            self.events.append((sandbox.id, sandbox.status))

        self.broker.include_router(router)
        bus = Bus(BrokerConnection(self.broker))
        self.lifecycle = Lifecycle(self.store, driver, bus, Catalog(), quota=quota)

    async def create(self, **request: Any) -> Sandbox:
        body = CreateSandboxRequest.model_validate(request)
        return await self.lifecycle.create(CreateSandbox(caller=USER, request=body))


@pytest.fixture
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    driver, quota = getattr(request, "param", (MemoryDriver(), None))
    created = World(driver, quota)
    async with TestNatsBroker(created.broker):
        yield created


async def test_a_miss_creates_the_sandbox_cold_on_a_runtime_of_its_own_id(world: World) -> None:
    sandbox = await world.create(env={"GREETING": "hi"})
    assert (sandbox.status, sandbox.from_warm_pool) == (SandboxStatus.RUNNING, False)
    assert len(world.pools.claims) == 1
    (spec,) = world.driver.created
    assert (spec.sandbox_id, spec.env) == (sandbox.id, {"GREETING": "hi"})
    assert await world.store.runtime_id(sandbox.id) == sandbox.id
    assert world.events == [
        (sandbox.id, SandboxStatus.CREATING),
        (sandbox.id, SandboxStatus.RUNNING),
    ]


async def test_a_hit_adopts_the_warm_runtime_without_creating_one(world: World) -> None:
    await world.pools.add("wp-aaaaaaaaaaaa")
    sandbox = await world.create()
    assert (sandbox.status, sandbox.from_warm_pool) == (SandboxStatus.RUNNING, True)
    assert [spec.sandbox_id for spec in world.driver.created] == ["wp-aaaaaaaaaaaa"]
    assert await world.store.runtime_id(sandbox.id) == "wp-aaaaaaaaaaaa"
    assert await world.store.hold(sandbox.id, "wp-aaaaaaaaaaaa") is HoldState.HOLDS
    assert world.pools.claims[0].sandbox_id == sandbox.id
    assert [status for _, status in world.events] == [SandboxStatus.RUNNING] * 2


async def test_a_sandbox_with_network_or_without_warm_pools_is_never_claimed(
    world: World,
) -> None:
    await world.pools.add("wp-aaaaaaaaaaaa")
    cold = await world.create(useWarmPool=False)
    networked = await world.create(networkAccess={"enabled": True, "egress": [{"ports": [443]}]})
    assert world.pools.claims == []
    assert not cold.from_warm_pool
    assert not networked.from_warm_pool


@pytest.mark.parametrize("world", [(MemoryDriver(), Quota(1, 512 * MI))], indirect=True)
async def test_a_create_past_the_quota_is_refused_and_its_claimed_runtime_destroyed(
    world: World,
) -> None:
    await world.create(resources={"memory": "256Mi"})
    await world.pools.add("wp-aaaaaaaaaaaa")
    with pytest.raises(ServiceError) as refused:
        await world.create(resources={"memory": "256Mi"})
    assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
    assert refused.value.details is not None
    assert refused.value.details["resource"] == "sandboxes"
    assert await world.driver.inspect("wp-aaaaaaaaaaaa") is None
    assert len(world.store.rows) == 1


@pytest.mark.parametrize("world", [(MemoryDriver(), Quota(5, 512 * MI))], indirect=True)
async def test_memory_is_admitted_against_the_owners_live_sandboxes(world: World) -> None:
    first = await world.create(resources={"memory": "384Mi"}, useWarmPool=False)
    with pytest.raises(ServiceError) as refused:
        await world.create(resources={"memory": "256Mi"}, useWarmPool=False)
    assert refused.value.details == {
        "resource": "memory",
        "limit": 512 * MI,
        "current": 384 * MI,
        "requested": 256 * MI,
    }
    await world.lifecycle.end(first, SandboxStatus.TERMINATED, SandboxEventName.TERMINATED, None)
    assert (await world.create(resources={"memory": "256Mi"})).status is SandboxStatus.RUNNING


@pytest.mark.parametrize("world", [(MemoryDriver(capacity=0), None)], indirect=True)
async def test_a_runtime_that_cannot_start_fails_the_row_and_answers_unavailable(
    world: World,
) -> None:
    with pytest.raises(ServiceError) as refused:
        await world.create()
    assert refused.value.code is ErrorCode.RUNTIME_UNAVAILABLE
    (row,) = world.store.rows.values()
    assert row["sandbox"].status is SandboxStatus.FAILED
    assert world.events[-1][1] is SandboxStatus.FAILED


async def test_an_unknown_runtime_is_refused_before_any_row(world: World) -> None:
    with pytest.raises(ServiceError) as refused:
        await world.create(runtime="cobol:85")
    assert refused.value.code is ErrorCode.INVALID_REQUEST
    assert world.store.rows == {}
    assert world.pools.claims == []
