"""Ends sandboxes past their lifetime (or paused past their `pausedTimeout`), releases
warm claims left unsettled, reconciles rows with live runtimes (and freezers, see
`PauseRepair`), fails the creates this instance abandoned, and sweeps the snapshot chunks
no snapshot uses.

One pass at a time across replicas (a PostgreSQL advisory lock); a replica that
finds the lock taken skips the pass. Each replica fails its own abandoned creates on every
pass, outside that lock: no other replica touches them while it lives. The chunk sweep
runs beside the passes, at start and then hourly, under the chunk lock (see
`Snapshots.sweep_unused`).
"""

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from llmsafespace.contracts import SandboxEventName, SandboxStatus
from llmsafespace.contracts.ids import RuntimeId
from llmsafespace.runtime import Driver, ReportsFailures, RuntimeOwner
from llmsafespace.servicekit import locks

from .instance import Instance, is_alive
from .lifecycle import Lifecycle
from .metrics import BY_STATE
from .pause_repair import PauseRepair
from .snapshots import Snapshots
from .store import SandboxStore

log = structlog.get_logger()

# A create this recent, by an instance that predates the `creator` column, may be in flight.
_CREATE_GRACE = timedelta(seconds=90)
RECONCILE_EVERY = 30
CHUNK_SWEEP_EVERY = 3600  # passes between sweeps of unused chunks (an hour at 1 s a pass)


class Reaper:
    def __init__(
        self,
        pool: asyncpg.Pool,
        store: SandboxStore,
        lifecycle: Lifecycle,
        driver: Driver,
        instance: Instance | None = None,
        pause_repair: PauseRepair | None = None,
    ) -> None:
        self._pool = pool
        self._store = store
        self._lifecycle = lifecycle
        self._driver = driver
        self._instance = instance
        self._pause_repair = pause_repair  # None where the driver does not freeze

    async def run(self, interval: float) -> None:
        """End expired sandboxes and fail this instance's abandoned creates every
        `interval` seconds; reconcile at start and then every RECONCILE_EVERY passes (a row
        left `creating` by a crash fails then). Sweep unused snapshot chunks beside them (a
        large store takes a while: the passes do not wait for it) at start and every
        CHUNK_SWEEP_EVERY passes, or RECONCILE_EVERY after a sweep that a capture in
        flight cut short."""
        snapshots = self._lifecycle.snapshots
        sweep: asyncio.Task[bool] | None = None
        next_sweep = 0
        try:
            for passes in itertools.count():
                if sweep is not None and sweep.done():
                    whole = sweep.result()
                    next_sweep = passes + (CHUNK_SWEEP_EVERY if whole else RECONCILE_EVERY)
                    sweep = None
                if sweep is None and snapshots is not None and passes >= next_sweep:
                    sweep = asyncio.create_task(self._sweep_chunks(snapshots))
                try:
                    if self._instance is not None:
                        await self._instance.hold()  # again, after a PostgreSQL restart
                    await self.fail_abandoned_creates()
                    if passes % RECONCILE_EVERY == 0:
                        await self._exclusively(self.reconcile)
                    await self._exclusively(self.expire)
                except Exception:
                    log.exception("reaper_pass_failed")
                await asyncio.sleep(interval)
        finally:
            if sweep is not None:
                sweep.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sweep

    @staticmethod
    async def _sweep_chunks(snapshots: Snapshots) -> bool:
        try:
            return await snapshots.sweep_unused()
        except Exception:
            log.exception("snapshot_chunk_sweep_failed")
            return False

    async def _exclusively(self, work: Callable[[], Awaitable[None]]) -> None:
        async with (
            self._pool.acquire() as conn,
            locks.held(conn, locks.SANDBOX_REAPER, wait=False) as mine,
        ):
            if mine:
                await work()

    async def expire(self) -> None:
        for state, count in (await self._store.count_by_status()).items():
            BY_STATE.labels(state=state).set(count)
        for sandbox in await self._store.expired():
            await self._lifecycle.end(
                sandbox, SandboxStatus.TERMINATED, SandboxEventName.EXPIRED, "expired"
            )
        for sandbox in await self._store.paused_too_long():
            await self._lifecycle.end(
                sandbox,
                SandboxStatus.TERMINATED,
                SandboxEventName.EXPIRED,
                "paused longer than pausedTimeout",
            )
        await self._lifecycle.handover.release_claims()

    async def fail_abandoned_creates(self) -> None:
        """Fail the `creating` rows this instance inserted whose create has ended without
        recording it (its cleanup met the database down, or the insert's reply was lost),
        and destroy their runtimes. Otherwise such a row stays `creating` for as long as
        this instance lives: the reconcile leaves a live creator's rows alone."""
        # Rows, then the creates in flight, then the rows again: a row read first was
        # inserted by a create already in the set, so one not in it now has ended; and
        # nothing but its own create moves a row from `creating` to `running`.
        mine = await self._store.own_creating()
        in_flight = self._lifecycle.creates_in_flight()
        abandoned = [sandbox for sandbox in mine if sandbox.id not in in_flight]
        if not abandoned:
            return
        still = await self._store.creators([sandbox.id for sandbox in abandoned])
        for sandbox in abandoned:
            if sandbox.id in still:
                log.warning("abandoned_create_failed", sandbox_id=sandbox.id)
                await self._lifecycle.end(
                    sandbox, SandboxStatus.FAILED, SandboxEventName.FAILED, "creation interrupted"
                )

    async def _why_gone(self, runtime_id: RuntimeId) -> str:
        """The driver's reason where it reports failures (an evicted Pod says Evicted,
        whether the failure watch or this pass sees it first)."""
        if isinstance(self._driver, ReportsFailures):
            return await self._driver.failure(runtime_id)
        return "the runtime disappeared"

    async def reconcile(self) -> None:
        """After a restart: rows whose runtime is gone fail; runtimes with no live row go;
        freezers that disagree with their rows are brought to them (`PauseRepair`)."""
        # Rows read before the runtimes are listed: a row's runtime existed before the
        # listing. Rows read after: a runtime's row (inserted before it starts) is there.
        rows_before = await self._store.live()
        handles = await self._driver.list()
        alive = {handle.runtime_id for handle in handles}
        live_rows = await self._store.live()
        settled = datetime.now(UTC) - _CREATE_GRACE
        creators = await self._store.creators(
            [sandbox.id for sandbox, _ in rows_before if sandbox.status is SandboxStatus.CREATING]
        )
        for sandbox, runtime_id in rows_before:
            if sandbox.status is SandboxStatus.CREATING:
                if sandbox.id not in creators:  # it has left `creating` meanwhile
                    continue
                creator = creators[sandbox.id]
                in_flight = (
                    sandbox.created_at > settled
                    if creator is None
                    else await is_alive(self._pool, creator)
                )
                if not in_flight:  # its creator died mid-create: fail it, destroy its runtime
                    await self._lifecycle.end(
                        sandbox,
                        SandboxStatus.FAILED,
                        SandboxEventName.FAILED,
                        "creation interrupted",
                    )
            elif (runtime_id or sandbox.id) not in alive:
                await self._lifecycle.end(
                    sandbox,
                    SandboxStatus.FAILED,
                    SandboxEventName.FAILED,
                    await self._why_gone(RuntimeId(runtime_id or sandbox.id)),
                )
        if self._pause_repair is not None:
            await self._pause_repair.check(
                [
                    (sandbox, RuntimeId(runtime_id or sandbox.id))
                    for sandbox, runtime_id in rows_before
                    if sandbox.status is not SandboxStatus.CREATING
                    and (runtime_id or sandbox.id) in alive
                ]
            )
        # Only the runtimes this service created (their owner label says so) are its to
        # destroy; a claimed warm runtime is warmpool-svc's until a row here names it
        # (and released through it otherwise, see `WarmHandover.release_claims`).
        known = {runtime_id or sandbox.id for sandbox, runtime_id in live_rows}
        known |= await self._store.snapshot_paused()  # a resume may be restoring one
        for handle in handles:
            if handle.owner is RuntimeOwner.SANDBOX_SVC and handle.runtime_id not in known:
                log.warning("orphan_runtime_destroyed", runtime_id=handle.runtime_id)
                await self._driver.destroy(handle.runtime_id)
