"""Keeps every pool at its desired size: starts (and preloads) sandboxes, recycles ready
ones past their ttl, scales with demand, and destroys the runtimes it started that no
row accounts for.

Any replica may run passes; a PostgreSQL advisory lock per pool makes one the
replenisher of that pool at a time (its lock dies with its session, so a crashed
replica's pending rows are found and cleaned by the next holder).
"""

import asyncio
import math
import secrets
import shlex

import asyncpg
import structlog

from llmsafespace.contracts import (
    Caller,
    RestoreSnapshot,
    RuntimeId,
    ServiceError,
    Template,
    TemplateRef,
    WarmPoolEvent,
    WarmPoolEventName,
    WarmPoolSpec,
    WarmSandboxState,
    commands,
    quantity_bytes,
    subjects,
)
from llmsafespace.runtime import AgentClient, Driver, DriverError, RuntimeOwner, RuntimeSpec
from llmsafespace.servicekit import Bus, locks

from .metrics import Metrics
from .pool_quota import reservation
from .store import Demand, PoolStore, stored_spec

log = structlog.get_logger()

# The target is where POST /packages installs (importable); offline, pip says what to do.
PRELOAD_PIP = "pip install --quiet --target /workspace/.packages --"
CLAIM_LEDGER_DAYS = 1  # how long a claim's ledger row is kept (see PoolStore.forget_claims)
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_warm_id() -> RuntimeId:
    """A new warm runtime's id (`wp-` for people reading logs: nothing reads it back;
    whose a runtime is, is its owner label)."""
    return RuntimeId("wp-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16)))


def desired_size(spec: WarmPoolSpec, current: int, demand: Demand) -> int:
    """`minSize`, or with autoscaling: enough that the claims of the last
    `scaleDownDelay` seconds use `targetUtilization` of it, never shrinking while
    claims keep coming, and `minSize` again once none came for `scaleDownDelay`;
    always within `minSize`..`maxSize`."""
    scaling = spec.auto_scaling
    if not scaling.enabled or not demand.busy:
        return spec.min_size
    wanted = math.ceil(demand.recent / scaling.target_utilization)
    return max(spec.min_size, min(spec.max_size, max(current, wanted)))


class PreloadFailed(Exception):
    """A preload package or script failed; the sandbox never becomes ready."""


class Replenisher:
    def __init__(
        self,
        db: asyncpg.Pool,
        store: PoolStore,
        driver: Driver,
        bus: Bus,
        metrics: Metrics,
        *,
        parallel_starts: int,
        preload_timeout: float,
        claim_delay: float = 0.0,
    ) -> None:
        self._db = db
        self._store = store
        self._driver = driver
        self._bus = bus
        self._metrics = metrics
        self._starts = asyncio.Semaphore(parallel_starts)
        self._preload_timeout = preload_timeout
        self._claim_delay = claim_delay
        self._due: set[str] = set()
        self._wakeup = asyncio.Event()
        self._tending: dict[str, asyncio.Task[None]] = {}
        self._reserved = False  # every pool's reservation reported since the start

    def wake(self, pool: str) -> None:
        """Tend `pool` now (after a claim, a create or an update)."""
        self._due.add(pool)
        self._wakeup.set()

    def claimed(self, pool: str) -> None:
        """Tend `pool` shortly after a claim (`claim_delay`): the claimer's first requests
        go before a sandbox start competes with them, and a burst of claims is one pass."""
        if self._claim_delay <= 0:
            self.wake(pool)
        else:
            asyncio.get_running_loop().call_later(self._claim_delay, self.wake, pool)

    async def run(self, interval: float) -> None:
        """Sweep orphans once, then tend every pool each `interval` (or when woken)."""
        passes = 0
        while True:
            try:
                if not self._reserved:
                    self._reserved = await self._reserve_again()
                if passes % 30 == 0:
                    await self._sweep_orphans()
                due, self._due = self._due, set()
                names = {row["name"] for row in await self._store.pools()} | due
                for name in names:
                    task = self._tending.get(name)
                    if task is None or task.done():
                        self._tending[name] = asyncio.create_task(self._tend(name))
            except Exception:
                log.exception("replenish_pass_failed")
            passes += 1
            self._wakeup.clear()
            try:
                async with asyncio.timeout(interval):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    async def close(self) -> None:
        for task in self._tending.values():
            task.cancel()
        await asyncio.gather(*self._tending.values(), return_exceptions=True)

    async def _tend(self, name: str) -> None:
        try:
            async with (
                self._db.acquire() as conn,
                locks.held(conn, f"warmpool:{name}", wait=False) as mine,
            ):
                if not mine:
                    return
                await self._tend_locked(name)
        except Exception:
            log.exception("replenish_failed", pool=name)
        if name in self._due:  # claimed from while we worked: go again soon
            self._wakeup.set()

    async def _tend_locked(self, name: str) -> None:
        row = await self._store.get_pool(name)
        spec = None if row is None else stored_spec(row)
        if row is None or spec is None:
            return
        await self._destroy(await self._store.take_pending(name))
        demand = await self._store.demand(name, spec.auto_scaling.scale_down_delay)
        desired = desired_size(spec, row["desired"], demand)
        counts = (await self._store.counts([name]))[name]
        ready = counts.get(WarmSandboxState.READY, 0)
        expired = await self._store.count_expired(name, spec.ttl) if spec.ttl else 0
        if ready > desired:  # the oldest go first, so expired ones before fresh ones
            excess = await self._store.take_excess(name, ready - desired)
            await self._destroy(excess)
            await self._event(name, WarmPoolEventName.SCALED, excess)
            ready, expired = ready - len(excess), max(0, expired - len(excess))
        # Replacements for expired sandboxes start before those go, so the pool never
        # runs dry at a ttl boundary (an expired one may still be claimed meanwhile).
        need = max(0, desired - (ready - expired))
        results = await self._start_many(name, spec, row["owner_id"], need)
        errors = [error for error in results if error]
        if expired:
            recycled = await self._store.take_expired(name, spec.ttl)
            if recycled:
                await self._destroy(recycled)
                await self._event(name, WarmPoolEventName.RECYCLED, recycled)
                log.info("warm_pool_recycled", pool=name, recycled=len(recycled))
        await self._store.record_scale(
            name, desired, errors[0] if errors else None, demand.last_claim
        )
        if desired != row["desired"]:
            log.info("warm_pool_scaled", pool=name, desired=desired, previous=row["desired"])
        if need:
            log.info("warm_pool_replenished", pool=name, started=need - len(errors))
            await self._event(name, WarmPoolEventName.REPLENISHED, [])
        counts = (await self._store.counts([name]))[name]
        for state in WarmSandboxState:
            self._metrics.sandboxes.labels(pool=name, state=state.value).set(counts.get(state, 0))

    async def _start_many(
        self, pool: str, spec: WarmPoolSpec, owner_id: str, count: int
    ) -> list[str | None]:
        """Start ``count`` warm sandboxes (of the pool's template, as its owner may use it);
        an error message for each that failed."""
        if not count:
            return []
        template = None
        if spec.template is not None:
            ref = TemplateRef(caller=Caller(user_id=owner_id), name=spec.template)
            try:
                template = await self._bus.request(commands.TEMPLATE_RESOLVE, ref)
            except ServiceError as exc:
                return [exc.message[:500]]
        return list(
            await asyncio.gather(
                *(self._start(pool, spec, owner_id, template) for _ in range(count))
            )
        )

    async def _start(
        self, pool: str, spec: WarmPoolSpec, owner_id: str, template: Template | None = None
    ) -> str | None:
        """Start one warm sandbox; returns an error message on failure, else None."""
        runtime_id = new_warm_id()
        async with self._starts:
            await self._store.insert_pending(runtime_id, pool, spec)
            try:
                handle = await self._driver.create(
                    RuntimeSpec(
                        runtime_id=runtime_id,
                        owner=RuntimeOwner.WARMPOOL_SVC,
                        runtime=spec.runtime,
                        cpu=spec.resources.cpu,
                        memory_bytes=quantity_bytes(spec.resources.memory),
                        storage_bytes=quantity_bytes(spec.resources.ephemeral_storage),
                        pool=pool,
                        env={} if template is None else template.spec.env,
                        template_layer=None if template is None else template.layer,
                    )
                )
                await self._restore(handle.endpoint, handle.token, spec, owner_id)
                await self._preload(handle.endpoint, handle.token, spec)
            except (DriverError, PreloadFailed) as exc:
                log.warning("warm_start_failed", pool=pool, error=str(exc))
                await self._driver.destroy(runtime_id)
                await self._store.remove(runtime_id)
                return str(exc)[:500]
            except BaseException:
                await self._driver.destroy(runtime_id)
                await self._store.remove(runtime_id)
                raise
            if not await self._store.mark_ready(runtime_id, handle.endpoint, handle.token):
                await self._driver.destroy(runtime_id)  # the pool went while this one started
        return None

    async def _restore(self, endpoint: str, token: str, spec: WarmPoolSpec, owner_id: str) -> None:
        """A pool of a snapshot: sandbox-svc (which keeps the chunks) streams its workspace
        in, as the pool's owner may use it."""
        if spec.snapshot is None:
            return
        command = RestoreSnapshot(
            caller=Caller(user_id=owner_id),
            snapshot_id=spec.snapshot,
            endpoint=endpoint,
            token=token,
        )
        try:
            await self._bus.request(
                commands.SNAPSHOT_RESTORE, command, timeout=self._preload_timeout
            )
        except ServiceError as exc:
            raise PreloadFailed(f"restoring snapshot {spec.snapshot}: {exc.message}") from exc

    async def _preload(self, endpoint: str, token: str, spec: WarmPoolSpec) -> None:
        if not spec.preload_packages and not spec.preload_scripts:
            return
        client = await AgentClient.connect(endpoint, token)
        try:
            if spec.preload_packages:
                command = f"{PRELOAD_PIP} " + shlex.join(spec.preload_packages)
                result = await client.run_command(command, timeout=self._preload_timeout)
                if result.exit_code != 0:
                    raise PreloadFailed(f"installing packages failed: {result.stderr[-400:]}")
            for script in spec.preload_scripts:
                result = await client.run_code(script, timeout=self._preload_timeout)
                if result.status != "completed":
                    detail = result.error or result.stderr[-400:]
                    raise PreloadFailed(f"preload script failed: {detail}")
        finally:
            await client.close()

    async def _destroy(self, runtime_ids: list[RuntimeId]) -> None:
        for runtime_id in runtime_ids:
            await self._driver.destroy(runtime_id)

    async def _event(
        self, pool: str, event: WarmPoolEventName, runtime_ids: list[RuntimeId]
    ) -> None:
        await self._bus.event(
            subjects.warmpool_event(pool, event),
            WarmPoolEvent(pool=pool, event=event, count=len(runtime_ids), runtime_ids=runtime_ids),
        )

    async def _reserve_again(self) -> bool:
        """At start, tell sandbox-svc again what each ordinary user's pool reserves (a
        report lost to a crash, or pools older than these reports, are counted then);
        False until sandbox-svc took them all."""
        try:
            for row in await self._store.pools():
                if not row["shared"]:
                    await self._store.reserve_again(row["name"], self._reserve)
        except ServiceError as exc:
            log.warning("pool_reservations_not_reported", error=exc.message)
            return False
        return True

    async def _reserve(self, key: str, owner_id: str, spec: WarmPoolSpec | None) -> None:
        await self._bus.request(commands.SANDBOX_RESERVE, reservation(key, owner_id, spec))

    async def _sweep_orphans(self) -> None:
        """Destroy the runtimes this service started that no row accounts for (a crash
        between a start and its row's removal, or between a release and its destroy),
        and forget assigned rows whose runtime is gone (ended with its sandbox). An
        assigned runtime is never destroyed here: it is its sandbox's until released
        (see `ClaimWarmSandbox`), so nothing here depends on sandbox-svc or on time."""
        async with (
            self._db.acquire() as conn,
            locks.held(conn, locks.WARMPOOL_SWEEP, wait=False) as mine,
        ):
            if not mine:
                return
            handles = await self._driver.list()
            alive = {h.runtime_id for h in handles}
            ours = {h.runtime_id for h in handles if h.owner is RuntimeOwner.WARMPOOL_SVC}
            known = await self._store.known_ids()
            for runtime_id in ours - known:
                log.warning("orphan_warm_runtime_destroyed", runtime_id=runtime_id)
                await self._driver.destroy(runtime_id)
            for gone in await self._store.assigned() - alive:
                # (Listed before it was started and claimed? Then it is there now.)
                if await self._driver.inspect(gone) is None:
                    await self._store.remove(gone)
            await self._store.forget_claims(CLAIM_LEDGER_DAYS)
