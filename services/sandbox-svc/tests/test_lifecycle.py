"""`Lifecycle.create` in memory: warm claims (hit, miss, skipped, lost, released), cold
creates, quota admission and driver failures, with the in-memory driver, FastStream's
test broker standing in for warmpool-svc, and the `sandboxes` rows kept in a dict."""

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.nats import NatsBroker, TestNatsBroker

from llmsafespace.contracts import (
    Caller,
    Catalog,
    ClaimResult,
    ClaimWarmSandbox,
    CreateSandbox,
    CreateSandboxRequest,
    ErrorCode,
    ReleaseWarmClaim,
    ResolvedSandbox,
    Role,
    RuntimeId,
    Sandbox,
    SandboxEventName,
    SandboxStatus,
    ServiceError,
    WarmClaimReleased,
    commands,
    quantity_bytes,
    subjects,
)
from llmsafespace.runtime import Handle, MemoryDriver, RuntimeOwner, RuntimeSpec, SandboxFailure
from llmsafespace.sandbox_svc.lifecycle import Lifecycle
from llmsafespace.sandbox_svc.pause_repair import PauseRepair
from llmsafespace.sandbox_svc.quota import Quota, Usage
from llmsafespace.sandbox_svc.reaper import Reaper
from llmsafespace.sandbox_svc.store import Started
from llmsafespace.servicekit import (
    BrokerConnection,
    Bus,
    Router,
    handles,
    hears,
    include_commands,
    middlewares,
)

USER = Caller(user_id="usr-aaaaaaaaaaaa", role=Role.USER)
MI = 2**20
LIVE = (SandboxStatus.CREATING, SandboxStatus.RUNNING)


class MemorySandboxStore:
    """The rows of `SandboxStore` in a dict, answering the calls `Lifecycle` makes as the
    SQL does (the quota is admitted against the owner's live rows in the insert)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.down = False  # every call but the insert fails, as with PostgreSQL gone

    def _answering(self) -> None:
        if self.down:
            raise ConnectionRefusedError("the database is down")

    async def insert(
        self,
        sandbox_id: str,
        owner_id: str,
        request: CreateSandboxRequest,
        quota: Quota | None = None,
        *,
        warm_claim: bool = False,
    ) -> Sandbox:
        if quota is not None:
            live = [row for row in self.rows.values() if _live(row, owner_id)]
            memory = sum(quantity_bytes(row["sandbox"].resources.memory) for row in live)
            quota.admit(Usage(len(live), memory), quantity_bytes(request.resources.memory))
        now = datetime.now(UTC)
        sandbox = Sandbox(
            id=sandbox_id,
            owner_id=owner_id,
            status=SandboxStatus.CREATING,
            runtime=request.runtime,
            security_level=request.security_level,
            timeout=request.timeout,
            resources=request.resources,
            metadata=json.loads(json.dumps(request.metadata)),
            from_warm_pool=False,
            created_at=now,
            expires_at=now + timedelta(seconds=request.timeout),
        )
        self.rows[sandbox_id] = {
            "sandbox": sandbox,
            "runtime_id": None,
            "endpoint": None,
            "token": None,
            "warm_claim": warm_claim,
        }
        return sandbox

    async def mark_running(self, sandbox_id: str, started: Started) -> Sandbox | None:
        self._answering()
        row = self.rows[sandbox_id]
        if row["sandbox"].status is not SandboxStatus.CREATING:
            return None
        row.update(endpoint=started.endpoint, token=started.token, runtime_id=started.runtime_id)
        row["warm_claim"] = row["warm_claim"] and not started.from_warm_pool
        row["sandbox"] = row["sandbox"].model_copy(
            update={"status": SandboxStatus.RUNNING, "from_warm_pool": started.from_warm_pool}
        )
        return row["sandbox"]

    async def settle_claim(self, sandbox_id: str) -> None:
        self.rows[sandbox_id]["warm_claim"] = False

    async def unsettled_claims(self, limit: int = 100) -> list[str]:
        return [
            sandbox_id
            for sandbox_id, row in self.rows.items()
            if row["warm_claim"] and row["sandbox"].status is not SandboxStatus.CREATING
        ][:limit]

    async def mark_ended(
        self, sandbox_id: str, status: SandboxStatus, reason: str | None
    ) -> Sandbox | None:
        self._answering()
        row = self.rows.get(sandbox_id)
        if row is None or row["sandbox"].status not in (*LIVE, SandboxStatus.PAUSED):
            return None
        row.update(endpoint=None, token=None)
        row["sandbox"] = row["sandbox"].model_copy(
            update={"status": status, "status_reason": reason}
        )
        return row["sandbox"]

    async def get(self, sandbox_id: str) -> Sandbox | None:
        row = self.rows.get(sandbox_id)
        return None if row is None else row["sandbox"]

    async def live(self) -> list[tuple[Sandbox, str | None]]:
        held = (*LIVE, SandboxStatus.PAUSED)
        rows = [row for row in self.rows.values() if row["sandbox"].status in held]
        return [(row["sandbox"], row["runtime_id"]) for row in rows]

    async def own_creating(self) -> list[Sandbox]:  # (one instance: every row is its own)
        rows = [row["sandbox"] for row in self.rows.values()]
        return [sandbox for sandbox in rows if sandbox.status is SandboxStatus.CREATING]

    async def creators(self, sandbox_ids: list[str]) -> dict[str, int | None]:
        creating = {sandbox.id for sandbox in await self.own_creating()}
        return dict.fromkeys(creating & set(sandbox_ids))

    async def snapshot_paused(self) -> set[str]:
        return set()

    async def runtime_id(self, sandbox_id: str) -> RuntimeId:
        self._answering()
        row = self.rows.get(sandbox_id)
        return RuntimeId((row or {}).get("runtime_id") or sandbox_id)


def _live(row: dict[str, Any], owner_id: str) -> bool:
    return row["sandbox"].owner_id == owner_id and row["sandbox"].status in LIVE


class WarmPools:
    """warmpool-svc's side of the handover, answered from a list of ready runtimes: a
    ledger of claims per sandbox, a release that destroys what a claim assigned. `lose`
    makes the next claims assign a runtime and then fail (the reply lost: warmpool-svc
    killed between its commit and its answer); `before_reply` runs just before a hit's
    answer (what sandbox-svc does meanwhile)."""

    def __init__(self, driver: MemoryDriver, store: MemorySandboxStore) -> None:
        self.driver = driver
        self.store = store
        self.ready: list[RuntimeId] = []
        self.claims: list[ClaimWarmSandbox] = []
        self.assigned: dict[str, RuntimeId | None] = {}
        self.released: set[str] = set()
        self.lose = False
        self.answering = True
        self.before_reply: Callable[[ClaimWarmSandbox], Awaitable[None]] | None = None

    async def add(self, runtime_id: str) -> None:
        spec = RuntimeSpec(runtime_id=runtime_id, owner=RuntimeOwner.WARMPOOL_SVC)
        await self.driver.create(spec)
        self.ready.append(spec.runtime_id)

    async def claim(self, request: ClaimWarmSandbox) -> ClaimResult:
        self.claims.append(request)
        # The row is there, `creating` and marked as asking, before anything is assigned.
        row = self.store.rows[request.sandbox_id]
        assert (row["sandbox"].status, row["warm_claim"]) == (SandboxStatus.CREATING, True)
        if request.sandbox_id in self.released:
            return ClaimResult(hit=False)
        runtime_id = self.ready.pop() if self.ready else None
        self.assigned[request.sandbox_id] = runtime_id
        if self.lose:
            raise ServiceError(ErrorCode.INTERNAL_ERROR, "the reply was lost")
        if runtime_id is None:
            return ClaimResult(hit=False)
        if self.before_reply is not None:
            await self.before_reply(request)
        handle = await self.driver.inspect(runtime_id)
        assert handle is not None
        return ClaimResult(
            hit=True, runtime_id=handle.runtime_id, endpoint=handle.endpoint, token=handle.token
        )

    async def release(self, request: ReleaseWarmClaim) -> WarmClaimReleased:
        if not self.answering:
            raise ServiceError(ErrorCode.RUNTIME_UNAVAILABLE, "warmpool-svc is down")
        self.released.add(request.sandbox_id)
        runtime_id = self.assigned.pop(request.sandbox_id, None)
        if runtime_id is not None:
            await self.driver.destroy(runtime_id)
        return WarmClaimReleased(runtime_id=runtime_id)


class World:
    def __init__(self, driver: MemoryDriver, quota: Quota | None) -> None:
        self.driver = driver
        self.store = MemorySandboxStore()
        self.pools = WarmPools(driver, self.store)
        self.events: list[tuple[str, SandboxStatus]] = []
        self.prepared: list[ResolvedSandbox] = []  # exec-svc's hints, with the event seen
        self.broker = NatsBroker(middlewares=middlewares(), logger=None)
        router = Router()
        handles(router, commands.WARMPOOL_CLAIM)(self.pools.claim)
        handles(router, commands.WARMPOOL_RELEASE)(self.pools.release)

        @router.subscriber(subjects.SANDBOX_EVENTS)
        async def event(sandbox: Sandbox) -> None:
            self.events.append((sandbox.id, sandbox.status))

        @hears(router, commands.EXEC_PREPARE)
        async def prepare(resolved: ResolvedSandbox) -> None:
            assert (resolved.sandbox_id, SandboxStatus.RUNNING) not in self.events  # before
            self.prepared.append(resolved)

        include_commands(self.broker, router)
        self.bus = Bus(BrokerConnection(self.broker))
        self.lifecycle = Lifecycle(self.store, driver, self.bus, Catalog(), quota=quota)

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
    assert (spec.runtime_id, spec.owner) == (sandbox.id, RuntimeOwner.SANDBOX_SVC)
    assert spec.env == {"GREETING": "hi"}
    assert await world.store.runtime_id(sandbox.id) == sandbox.id
    assert world.store.rows[sandbox.id]["warm_claim"] is False  # a miss settles the claim
    assert world.events == [
        (sandbox.id, SandboxStatus.CREATING),
        (sandbox.id, SandboxStatus.RUNNING),
    ]


async def test_a_hit_adopts_the_warm_runtime_claimed_for_its_creating_row(world: World) -> None:
    await world.pools.add("wp-aaaaaaaaaaaa")
    sandbox = await world.create()  # (the claim asserts the row was there, `creating`)
    assert (sandbox.status, sandbox.from_warm_pool) == (SandboxStatus.RUNNING, True)
    assert [spec.runtime_id for spec in world.driver.created] == ["wp-aaaaaaaaaaaa"]
    assert await world.store.runtime_id(sandbox.id) == "wp-aaaaaaaaaaaa"
    assert world.store.rows[sandbox.id]["warm_claim"] is False  # adopted: settled
    assert world.pools.claims[0].sandbox_id == sandbox.id
    assert world.events == [
        (sandbox.id, SandboxStatus.CREATING),
        (sandbox.id, SandboxStatus.RUNNING),
    ]


async def test_exec_svc_hears_how_to_reach_a_sandbox_that_starts_warm_or_cold(
    world: World,
) -> None:
    """Before the create's reply (and its `running` event), so exec-svc can connect to
    the agent before the first call reaches it."""
    await world.pools.add("wp-aaaaaaaaaaaa")
    warm = await world.create()
    cold = await world.create()
    assert not cold.from_warm_pool
    for sandbox, runtime_id in ((warm, "wp-aaaaaaaaaaaa"), (cold, cold.id)):
        handle = await world.driver.inspect(RuntimeId(runtime_id))
        assert handle is not None
        expected = ResolvedSandbox(
            sandbox_id=sandbox.id,
            owner_id=USER.user_id,
            status=SandboxStatus.RUNNING,
            endpoint=handle.endpoint,
            token=handle.token,
        )
        assert expected in world.prepared
    assert len(world.prepared) == 2


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
async def test_a_create_past_the_quota_is_refused_before_any_claim(world: World) -> None:
    await world.create(resources={"memory": "256Mi"})
    await world.pools.add("wp-aaaaaaaaaaaa")
    with pytest.raises(ServiceError) as refused:
        await world.create(resources={"memory": "256Mi"})
    assert refused.value.code is ErrorCode.QUOTA_EXCEEDED
    assert refused.value.details is not None
    assert refused.value.details["resource"] == "sandboxes"
    assert len(world.pools.claims) == 1  # the first create's only
    assert await world.driver.inspect(RuntimeId("wp-aaaaaaaaaaaa")) is not None  # still ready
    assert len(world.store.rows) == 1


async def test_a_claim_whose_reply_is_lost_goes_cold_and_is_released_once_past_creating(
    world: World,
) -> None:
    """warmpool-svc assigned a runtime and died before answering: the sandbox is created
    cold, and the reaper's pass releases the claim (its runtime destroyed) as soon as the
    row has left `creating`, however long the claim took: no grace period."""
    await world.pools.add("wp-aaaaaaaaaaaa")
    world.pools.lose = True
    sandbox = await world.create()
    assert (sandbox.status, sandbox.from_warm_pool) == (SandboxStatus.RUNNING, False)
    assert world.pools.assigned == {sandbox.id: "wp-aaaaaaaaaaaa"}
    assert await world.store.unsettled_claims() == [sandbox.id]
    await world.lifecycle.handover.release_claims()
    assert await world.driver.inspect(RuntimeId("wp-aaaaaaaaaaaa")) is None
    assert await world.driver.inspect(RuntimeId(sandbox.id)) is not None  # its own runs on
    assert await world.store.unsettled_claims() == []


async def test_a_release_warmpool_svc_does_not_answer_is_asked_again_on_the_next_pass(
    world: World,
) -> None:
    await world.pools.add("wp-aaaaaaaaaaaa")
    world.pools.lose, world.pools.answering = True, False
    sandbox = await world.create()
    await world.lifecycle.handover.release_claims()
    assert await world.store.unsettled_claims() == [sandbox.id]
    world.pools.answering = True
    await world.lifecycle.handover.release_claims()
    assert await world.store.unsettled_claims() == []
    assert await world.driver.inspect(RuntimeId("wp-aaaaaaaaaaaa")) is None


async def test_a_row_creating_is_never_released_while_its_create_may_adopt(world: World) -> None:
    """The claim's outcome is unknown while the row is `creating` (its creator may be
    adopting the runtime right now): the reaper's pass leaves it alone."""
    await world.pools.add("wp-aaaaaaaaaaaa")

    async def reaper_pass(request: ClaimWarmSandbox) -> None:
        await world.lifecycle.handover.release_claims()

    world.pools.before_reply = reaper_pass
    sandbox = await world.create()
    assert sandbox.from_warm_pool
    assert await world.driver.inspect(RuntimeId("wp-aaaaaaaaaaaa")) is not None
    assert world.pools.released == set()


async def test_a_sandbox_ended_while_its_claim_was_answered_releases_the_runtime(
    world: World,
) -> None:
    """Deleted (or expired) between the claim and its adoption: the sandbox never runs on
    the runtime, and warmpool-svc destroys it on the release."""
    await world.pools.add("wp-aaaaaaaaaaaa")

    async def deleted(request: ClaimWarmSandbox) -> None:
        sandbox = await world.store.get(request.sandbox_id)
        assert sandbox is not None
        await world.lifecycle.end(
            sandbox, SandboxStatus.TERMINATED, SandboxEventName.TERMINATED, None
        )

    world.pools.before_reply = deleted
    with pytest.raises(ServiceError) as ended:
        await world.create()
    assert ended.value.code is ErrorCode.SANDBOX_NOT_RUNNING
    (sandbox_id,) = world.store.rows
    assert world.pools.released == {sandbox_id}
    assert await world.driver.inspect(RuntimeId("wp-aaaaaaaaaaaa")) is None
    assert await world.store.unsettled_claims() == []


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


async def test_a_claim_whose_creator_died_before_adopting_is_released_once_the_row_failed(
    world: World,
) -> None:
    """sandbox-svc was killed between the claim's answer and its row's move to `running`:
    the reaper fails the row (its creator is gone), then releases its claim."""
    await world.pools.add("wp-aaaaaaaaaaaa")
    sandbox_id = "sb-diedmidclaim00"
    request = CreateSandboxRequest()
    await world.store.insert(sandbox_id, USER.user_id, request, warm_claim=True)
    claim = ClaimWarmSandbox(
        caller=USER,
        sandbox_id=sandbox_id,
        runtime=request.runtime,
        security_level=request.security_level,
        resources=request.resources,
    )
    assert (await world.pools.claim(claim)).hit  # ... and the creator dies here
    await world.lifecycle.handover.release_claims()
    assert await world.driver.inspect(RuntimeId("wp-aaaaaaaaaaaa")) is not None  # creating
    await world.store.mark_ended(sandbox_id, SandboxStatus.FAILED, "creation interrupted")
    await world.lifecycle.handover.release_claims()
    assert await world.driver.inspect(RuntimeId("wp-aaaaaaaaaaaa")) is None
    assert await world.store.unsettled_claims() == []


async def test_the_reaper_destroys_the_runtimes_its_service_owns_and_no_live_row_names(
    world: World,
) -> None:
    """Ownership is the runtime's owner label, not its id: an orphan sandbox-svc started
    goes, a warm runtime named like a sandbox stays (warmpool-svc's), and the warm
    runtime a live sandbox adopted stays."""
    await world.pools.add("wp-aaaaaaaaaaaa")
    adopted = await world.create()
    orphan = RuntimeSpec(runtime_id="sb-orphanorphan0", owner=RuntimeOwner.SANDBOX_SVC)
    await world.driver.create(orphan)
    await world.pools.add("sb-lookslikeasbx")  # warmpool-svc's, whatever its name
    reaper = Reaper(None, world.store, world.lifecycle, world.driver)  # type: ignore[arg-type]
    await reaper.reconcile()
    alive = {handle.runtime_id for handle in await world.driver.list()}
    assert alive == {"wp-aaaaaaaaaaaa", "sb-lookslikeasbx"}
    assert (await world.store.get(adopted.id)) == adopted


class EvictingDriver(MemoryDriver):
    """A driver that reports failures, as the Kubernetes one does: what it evicts
    leaves `list()` with a reason."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: dict[RuntimeId, str] = {}

    async def evict(self, runtime_id: RuntimeId) -> None:
        await self.destroy(runtime_id)
        self.reasons[runtime_id] = "Evicted: The node was low on memory."

    async def failures(self) -> AsyncIterator[SandboxFailure]:
        for runtime_id, reason in self.reasons.items():
            yield SandboxFailure(runtime_id, reason)

    async def failure(self, runtime_id: RuntimeId) -> str:
        return self.reasons.get(runtime_id, "the pod disappeared")


@pytest.mark.parametrize("world", [(EvictingDriver(), None)], indirect=True)
async def test_a_reconcile_that_sees_a_failed_runtime_first_gives_the_drivers_reason(
    world: World,
) -> None:
    """A reconcile pass can see an evicted Pod before the failure watch does: the
    sandbox fails with the eviction's reason either way, not a vaguer one."""
    sandbox = await world.create()
    assert isinstance(world.driver, EvictingDriver)
    await world.driver.evict(RuntimeId(sandbox.id))
    reaper = Reaper(None, world.store, world.lifecycle, world.driver)  # type: ignore[arg-type]
    await reaper.reconcile()
    ended = await world.store.get(sandbox.id)
    assert ended is not None
    assert (ended.status, ended.status_reason) == (
        SandboxStatus.FAILED,
        "Evicted: The node was low on memory.",
    )


class OutageDriver(MemoryDriver):
    """A driver during whose creates the database goes down (`outage` runs then)."""

    def __init__(self) -> None:
        super().__init__()
        self.outage: Callable[[], None] = lambda: None

    async def create(self, spec: RuntimeSpec) -> Handle:
        handle = await super().create(spec)
        self.outage()
        return handle


@pytest.mark.parametrize("world", [(OutageDriver(), None)], indirect=True)
async def test_a_create_whose_cleanup_meets_the_database_down_is_failed_once_it_is_back(
    world: World,
) -> None:
    """The create cannot record its end, and its row stays `creating` under a live
    creator: its runtime goes at once all the same, and the reaper's next pass after the
    outage fails the row."""
    assert isinstance(world.driver, OutageDriver)
    world.driver.outage = lambda: setattr(world.store, "down", True)
    with pytest.raises(ConnectionRefusedError):
        await world.create()
    (sandbox_id,) = world.store.rows
    assert world.store.rows[sandbox_id]["sandbox"].status is SandboxStatus.CREATING
    assert await world.driver.list() == []
    world.store.down = False
    reaper = Reaper(None, world.store, world.lifecycle, world.driver)  # type: ignore[arg-type]
    await reaper.fail_abandoned_creates()
    failed = await world.store.get(sandbox_id)
    assert failed is not None
    assert (failed.status, failed.status_reason) == (SandboxStatus.FAILED, "creation interrupted")
    assert world.events[-1] == (sandbox_id, SandboxStatus.FAILED)


async def test_a_create_in_flight_is_never_failed_as_abandoned(world: World) -> None:
    await world.pools.add("wp-aaaaaaaaaaaa")
    reaper = Reaper(None, world.store, world.lifecycle, world.driver)  # type: ignore[arg-type]

    async def reaper_pass(request: ClaimWarmSandbox) -> None:
        assert world.lifecycle.creates_in_flight() == {request.sandbox_id}
        await reaper.fail_abandoned_creates()

    world.pools.before_reply = reaper_pass
    sandbox = await world.create()
    assert sandbox.status is SandboxStatus.RUNNING
    assert world.lifecycle.creates_in_flight() == frozenset()


class FreezingDriver(MemoryDriver):
    """A driver that pauses (`Pauses`), its freezer a set of frozen runtimes."""

    def __init__(self) -> None:
        super().__init__()
        self.frozen: set[RuntimeId] = set()

    async def pause(self, runtime_id: RuntimeId) -> None:
        self.frozen.add(runtime_id)

    async def resume(self, runtime_id: RuntimeId) -> None:
        self.frozen.discard(runtime_id)

    async def is_paused(self, runtime_id: RuntimeId) -> bool:
        return runtime_id in self.frozen


def _set_row(world: World, sandbox_id: str, status: SandboxStatus) -> None:
    """The row as a pause or resume cut after its commit leaves it."""
    row = world.store.rows[sandbox_id]
    paused_at = datetime.now(UTC) if status is SandboxStatus.PAUSED else None
    row["sandbox"] = row["sandbox"].model_copy(update={"status": status, "paused_at": paused_at})


def _reaper(world: World) -> Reaper:
    assert isinstance(world.driver, FreezingDriver)
    repair = PauseRepair(world.store, world.driver, world.bus, world.lifecycle, 0)  # type: ignore[arg-type]
    return Reaper(None, world.store, world.lifecycle, world.driver, pause_repair=repair)  # type: ignore[arg-type]


@pytest.mark.parametrize("world", [(FreezingDriver(), None)], indirect=True)
async def test_a_freezer_that_disagrees_with_its_row_is_brought_to_it_on_a_later_pass(
    world: World,
) -> None:
    """A resume cut between its commit and its thaw: the row `running`, the runtime
    frozen; a pause cut between its commit and its freeze: the row `paused`, the runtime
    running. The first pass only notes each (it may be a call in flight), the next one
    repairs it and sends the event the cut call did not."""
    assert isinstance(world.driver, FreezingDriver)
    resumed, paused = await world.create(), await world.create()
    world.driver.frozen.add(RuntimeId(resumed.id))
    _set_row(world, paused.id, SandboxStatus.PAUSED)
    reaper = _reaper(world)
    await reaper.reconcile()
    assert world.driver.frozen == {resumed.id}
    await reaper.reconcile()
    assert world.driver.frozen == {paused.id}
    assert set(world.events[-2:]) == {
        (resumed.id, SandboxStatus.RUNNING),
        (paused.id, SandboxStatus.PAUSED),
    }
    events = len(world.events)
    await reaper.reconcile()
    assert len(world.events) == events


@pytest.mark.parametrize("world", [(FreezingDriver(), None)], indirect=True)
async def test_a_mismatch_is_left_alone_while_the_row_moves_or_this_instance_moves_it(
    world: World,
) -> None:
    """A row seen changed since the last pass is a new sighting; a pause, resume or
    snapshot of the sandbox in this instance is never raced."""
    assert isinstance(world.driver, FreezingDriver)
    sandbox = await world.create()
    world.driver.frozen.add(RuntimeId(sandbox.id))
    reaper = _reaper(world)
    await reaper.reconcile()
    row = world.store.rows[sandbox.id]
    later = row["sandbox"].expires_at + timedelta(seconds=5)  # as a resume moves it
    row["sandbox"] = row["sandbox"].model_copy(update={"expires_at": later})
    await reaper.reconcile()
    assert world.driver.frozen == {sandbox.id}
    async with world.lifecycle.moving(sandbox.id):
        await reaper.reconcile()
        await reaper.reconcile()
        assert world.driver.frozen == {sandbox.id}
    await reaper.reconcile()
    assert world.driver.frozen == set()
