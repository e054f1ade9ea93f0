"""Sandbox lifecycle: create (warm claim first, cold otherwise), get, terminate, resolve."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import structlog

from llmsafespace.contracts import (
    Caller,
    Catalog,
    CreateSandbox,
    ErrorCode,
    ResolvedSandbox,
    Role,
    RuntimeId,
    Sandbox,
    SandboxEventName,
    SandboxRef,
    SandboxStatus,
    ServiceError,
    SnapshotRef,
    new_sandbox_id,
    subjects,
)
from llmsafespace.runtime import (
    Driver,
    DriverError,
    Pauses,
    UnknownRuntime,
    UnsupportedSpec,
)
from llmsafespace.servicekit import Bus

from .chunks import ChunkStoreError
from .exec_prepare import prepare_exec
from .metrics import CREATE_SECONDS, CREATIONS, HitRatio
from .pause_by_snapshot import PauseBySnapshot
from .quota import Quota
from .refusals import ended_while_created, not_running
from .runtime_spec import runtime_spec
from .snapshot_store import StoredSnapshot
from .snapshots import Snapshots
from .store import SandboxStore, Started
from .template_store import TemplateStore
from .warm_handover import WarmHandover

log = structlog.get_logger()
RESTORE_WAIT = 600.0  # seconds a resolve waits for a resume by snapshot in flight


class Lifecycle:
    def __init__(
        self,
        store: SandboxStore,
        driver: Driver,
        bus: Bus,
        catalog: Catalog,
        claim_timeout: float = 2.0,
        quota: Quota | None = None,
        max_paused_timeout: int | None = None,
        snapshots: Snapshots | None = None,
        templates: TemplateStore | None = None,
    ) -> None:
        self._store = store
        self._driver = driver
        self._bus = bus
        self._catalog = catalog
        self.handover = WarmHandover(store, bus, claim_timeout)
        self._quota_limits = quota
        self._hit_ratio = HitRatio()
        self._max_paused_timeout = max_paused_timeout
        self._snapshots = snapshots
        self._templates = templates
        self._moves: dict[str, asyncio.Lock] = {}  # see `moving`
        self._waiting: dict[str, int] = {}  # callers holding or awaiting each of `_moves`
        self._creating: set[str] = set()  # see `creates_in_flight`
        self._by_snapshot = (
            None
            if isinstance(driver, Pauses) or snapshots is None
            else PauseBySnapshot(store, driver, snapshots, templates)
        )

    @property
    def snapshots(self) -> Snapshots | None:
        return self._snapshots

    async def create(self, command: CreateSandbox) -> Sandbox:
        source = None
        if command.request.snapshot is not None:
            command, source = await self._from_snapshot(command, command.request.snapshot)
        command, layer = await self._with_template(command)
        request = command.request
        if self._max_paused_timeout and request.paused_timeout > self._max_paused_timeout:
            request = request.model_copy(update={"paused_timeout": self._max_paused_timeout})
            command = command.model_copy(update={"request": request})
        self._catalog.runtime(request.runtime)  # an unknown runtime is a 400 before any row
        sandbox_id = new_sandbox_id()
        structlog.contextvars.bind_contextvars(sandbox_id=sandbox_id)
        started = time.perf_counter()
        # Warm sandboxes have no network: `networkAccess` means a cold create. `env` is
        # applied to a warm sandbox when it is claimed.
        warm = request.use_warm_pool and request.network_access is None
        self._creating.add(sandbox_id)  # before its row exists: see `creates_in_flight`
        try:
            sandbox = await self._insert_and_start(sandbox_id, command, warm, source, layer)
        finally:
            self._creating.discard(sandbox_id)
        kind = "warm" if sandbox.from_warm_pool else "cold"
        CREATIONS.labels(source=kind).inc()
        if warm:
            self._hit_ratio.created(request.runtime, warm=sandbox.from_warm_pool)
        CREATE_SECONDS.labels(source=kind).observe(time.perf_counter() - started)
        log.info("sandbox_created", warm=sandbox.from_warm_pool, runtime=request.runtime)
        return sandbox

    async def _insert_and_start(
        self,
        sandbox_id: str,
        command: CreateSandbox,
        warm: bool,
        source: StoredSnapshot | None,
        layer: str | None,
    ) -> Sandbox:
        """The row `creating`, then its runtime: a claimed warm one, else a cold one."""
        created = await self._store.insert(
            sandbox_id,
            command.caller.user_id,
            command.request,
            self._quota(command.caller),
            warm_claim=warm,
        )
        await self._bus.event(subjects.sandbox_event(sandbox_id, SandboxEventName.CREATED), created)
        try:
            sandbox = await self.handover.claim(sandbox_id, command) if warm else None
            if sandbox is None:
                sandbox = await self._create_cold(sandbox_id, command, source, layer)
        except BaseException:
            # Refused or interrupted (a shutdown, a lost reply): the row must not stay
            # `creating`, nor its runtime outlive it (an unsettled claim is released).
            await asyncio.shield(self._abandon(sandbox_id))
            raise
        return sandbox

    def creates_in_flight(self) -> frozenset[str]:
        """The sandboxes this instance is creating now. An id is added before its row is
        inserted and removed once its create has ended, whatever the outcome; so a
        `creating` row this instance inserted that was read before this set and is not in
        it was left behind by a create that could not record its end (the database was
        down, or the insert's reply was lost): see `Reaper.fail_abandoned_creates`."""
        return frozenset(self._creating)

    def is_moving(self, sandbox_id: str) -> bool:
        """Whether a pause, resume or snapshot of the sandbox runs (or waits to) in this
        instance: see `moving`."""
        return sandbox_id in self._waiting

    async def _from_snapshot(
        self, command: CreateSandbox, snapshot_id: str
    ) -> tuple[CreateSandbox, StoredSnapshot]:
        """The create as the snapshot shapes it: its runtime, its template (unless the
        request names one), and its env and metadata under the request's own entries. A
        warm pool built from the snapshot may serve it; else it starts cold and the
        workspace is restored into it."""
        if self._snapshots is None:
            raise ServiceError(ErrorCode.NOT_IMPLEMENTED, "snapshots are not configured")
        source = await self._snapshots.source(
            SnapshotRef(caller=command.caller, snapshot_id=snapshot_id)
        )
        request = command.request.model_copy(
            update={
                "runtime": source.public.runtime,
                "template": command.request.template or source.public.template,
                "env": {**source.env, **command.request.env},
                "metadata": {**source.public.metadata, **command.request.metadata},
            }
        )
        return command.model_copy(update={"request": request}), source

    def _quota(self, caller: Caller) -> Quota | None:
        return None if caller.role is Role.ADMIN else self._quota_limits  # admins exempt

    async def _with_template(self, command: CreateSandbox) -> tuple[CreateSandbox, str | None]:
        """A create naming a template: the template's runtime, its env under the
        request's own, and its layer (a template that is not ready is a 400)."""
        request = command.request
        if request.template is None:
            return command, None
        if self._templates is None:
            raise ServiceError(ErrorCode.INVALID_REQUEST, "templates are not enabled here")
        template = await self._templates.ready(command.caller, request.template)
        runtime = template.spec.runtime
        if "runtime" in request.model_fields_set and request.runtime != runtime:
            message = f"template {template.name!r} is of runtime {runtime!r}; omit `runtime`"
            raise ServiceError(ErrorCode.INVALID_REQUEST, message, {"fields": {"runtime": message}})
        env = template.spec.env | request.env
        request = request.model_copy(update={"runtime": runtime, "env": env})
        return command.model_copy(update={"request": request}), template.layer

    async def _abandon(self, sandbox_id: str) -> None:
        # The runtime of its own id goes first, as it needs no database: that may be what
        # failed, and then the row is failed later by the reaper (`fail_abandoned_creates`).
        await self._driver.destroy(RuntimeId(sandbox_id))
        await self._fail(sandbox_id, "creation interrupted")  # unless it failed already
        await self._driver.destroy(await self._store.runtime_id(sandbox_id))  # a warm one

    async def _create_cold(
        self,
        sandbox_id: str,
        command: CreateSandbox,
        source: StoredSnapshot | None = None,
        layer: str | None = None,
    ) -> Sandbox:
        """The runtime of the sandbox's own id, created for its `creating` row."""
        endpoint, token = await self._cold_create(sandbox_id, command, layer)
        if source is not None:
            await self._restore(sandbox_id, source, endpoint, token)
        started = Started(RuntimeId(sandbox_id), endpoint, token, from_warm_pool=False)
        sandbox = await self._store.mark_running(sandbox_id, started)
        if sandbox is None:  # ended while it was being created (expired, or deleted)
            await self._driver.destroy(RuntimeId(sandbox_id))
            raise ended_while_created(sandbox_id)
        await prepare_exec(self._bus, sandbox, started)
        await self._bus.event(subjects.sandbox_event(sandbox_id, SandboxEventName.RUNNING), sandbox)
        return sandbox

    async def _restore(
        self, sandbox_id: str, source: StoredSnapshot, endpoint: str, token: str
    ) -> None:
        if self._snapshots is None:
            return
        try:
            await self._snapshots.restore(source, endpoint, token)
        except (DriverError, OSError, ChunkStoreError) as exc:
            await self._driver.destroy(RuntimeId(sandbox_id))
            refusal = await self._snapshots.restore_refusal(source.public.id)
            if not await self._fail(sandbox_id, refusal.message):
                raise ended_while_created(sandbox_id) from exc  # its end broke the restore
            raise refusal from exc
        log.info("snapshot_restored", snapshot_id=source.public.id)

    async def _cold_create(
        self, sandbox_id: str, command: CreateSandbox, layer: str | None = None
    ) -> tuple[str, str]:
        request = command.request
        spec = runtime_spec(
            sandbox_id,
            request.runtime,
            request.resources,
            request.security_level,
            request.env,
            request.network_access,
            layer,
        )
        try:
            handle = await self._driver.create(spec)
        except UnknownRuntime as exc:
            await self._fail(sandbox_id, str(exc))
            raise ServiceError(
                ErrorCode.INVALID_REQUEST, str(exc), {"fields": {"runtime": str(exc)}}
            ) from exc
        except UnsupportedSpec as exc:
            await self._fail(sandbox_id, str(exc))
            raise ServiceError(ErrorCode.INVALID_REQUEST, str(exc)) from exc
        except DriverError as exc:
            if not await self._fail(sandbox_id, str(exc)):  # its end killed the start
                raise ended_while_created(sandbox_id) from exc
            raise ServiceError(ErrorCode.RUNTIME_UNAVAILABLE, str(exc)) from exc
        except BaseException as exc:
            await asyncio.shield(self._driver.destroy(RuntimeId(sandbox_id)))
            if isinstance(exc, Exception) and not await self._fail(
                sandbox_id, "creation interrupted"
            ):
                # The driver tripped over the end's destroy (files, processes gone under it).
                raise ended_while_created(sandbox_id) from exc
            raise
        return handle.endpoint, handle.token

    async def _fail(self, sandbox_id: str, reason: str) -> bool:
        """Record the sandbox `failed`; False when it had ended already (its outcome stays)."""
        sandbox = await self._store.mark_ended(sandbox_id, SandboxStatus.FAILED, reason)
        if sandbox:
            await self._bus.event(
                subjects.sandbox_event(sandbox_id, SandboxEventName.FAILED), sandbox
            )
        return sandbox is not None

    async def get(self, ref: SandboxRef) -> Sandbox:
        sandbox = await self._store.get(ref.sandbox_id)
        if sandbox is None or not ref.caller.can_access(sandbox.owner_id):
            raise ServiceError(ErrorCode.NOT_FOUND, f"sandbox {ref.sandbox_id} not found")
        return sandbox

    async def terminate(self, ref: SandboxRef) -> Sandbox:
        sandbox = await self.get(ref)
        return await self.end(sandbox, SandboxStatus.TERMINATED, SandboxEventName.TERMINATED, None)

    async def end(
        self, sandbox: Sandbox, status: SandboxStatus, event: SandboxEventName, reason: str | None
    ) -> Sandbox:
        """Destroy the runtime and record the outcome; idempotent. One still `creating` is
        recorded first: its create, whose start the destroy cuts short, then finds it ended
        (409, as after the start) rather than recording that start's failure as its own."""
        if sandbox.status is SandboxStatus.CREATING:
            ended = await self._store.mark_ended(sandbox.id, status, reason)
            await self._driver.destroy(await self._store.runtime_id(sandbox.id))
        else:
            await self._driver.destroy(await self._store.runtime_id(sandbox.id))
            ended = await self._store.mark_ended(sandbox.id, status, reason)
        if self._by_snapshot is not None:
            await self._by_snapshot.discard(sandbox.id)
        if ended is None:
            return await self._store.get(sandbox.id) or sandbox
        await self._bus.event(subjects.sandbox_event(sandbox.id, event), ended)
        log.info("sandbox_ended", sandbox_id=sandbox.id, status=status, reason=reason)
        return ended

    @contextlib.asynccontextmanager
    async def moving(self, sandbox_id: str) -> AsyncIterator[None]:
        """One pause, resume or snapshot of a sandbox at a time in this instance: a second
        pause or resume waits, then finds it moved and is answered as it is (concurrent
        `autoResume` calls included) instead of losing the row's race with a 409; a pause
        waits for a snapshot being taken (which froze under it, and failed a minute later
        when its transfer timed out), and a snapshot after a pause is refused at once."""
        lock = self._moves.setdefault(sandbox_id, asyncio.Lock())
        self._waiting[sandbox_id] = self._waiting.get(sandbox_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[sandbox_id] -= 1
            if not self._waiting[sandbox_id]:
                del self._waiting[sandbox_id], self._moves[sandbox_id]

    def _pausing_driver(self) -> Pauses | PauseBySnapshot:
        """The driver's freezer, or pause by snapshot where it cannot freeze."""
        if isinstance(self._driver, Pauses):
            return self._driver
        if self._by_snapshot is None:
            raise ServiceError(
                ErrorCode.NOT_IMPLEMENTED, "this runtime driver cannot pause sandboxes"
            )
        return self._by_snapshot

    async def pause(self, ref: SandboxRef) -> Sandbox:
        """Freeze a running sandbox (processes and memory kept) and stop its lifetime clock;
        where the driver cannot freeze, keep its workspace and let its runtime go. A
        paused one is answered as it is."""
        async with self.moving(ref.sandbox_id):
            return await self._pause(ref)

    async def _pause(self, ref: SandboxRef) -> Sandbox:
        sandbox = await self.get(ref)
        driver = self._pausing_driver()
        if sandbox.status is SandboxStatus.PAUSED:
            return sandbox
        paused = await self._store.pause(sandbox, self._quota(ref.caller))
        if paused is None:  # it moved meanwhile (another replica's pause: answered as is)
            return _as_it_is(await self.get(ref), SandboxStatus.PAUSED)
        runtime_id = await self._store.runtime_id(sandbox.id)
        try:
            if isinstance(driver, PauseBySnapshot):
                await driver.pause(paused)
            else:
                await driver.pause(runtime_id)
        except BaseException as exc:
            await asyncio.shield(self._undo_pause(driver, paused, runtime_id))
            if isinstance(exc, DriverError):
                raise _driver_error(exc) from exc
            raise
        await self._bus.event(subjects.sandbox_event(sandbox.id, SandboxEventName.PAUSED), paused)
        log.info("sandbox_paused", sandbox_id=sandbox.id)
        return paused

    async def _undo_pause(
        self, driver: Pauses | PauseBySnapshot, paused: Sandbox, runtime_id: RuntimeId
    ) -> None:
        if not isinstance(driver, PauseBySnapshot):  # (by snapshot: the runtime is untouched)
            with contextlib.suppress(DriverError):
                await driver.resume(runtime_id)
        await self._store.unpause(paused, None)

    async def resume(self, ref: SandboxRef) -> Sandbox:
        """Thaw a paused sandbox; it counts against the running quota again and its
        expiry moves by the time it spent paused. Paused by snapshot, it gets a new
        runtime with its workspace restored (`memoryKept` false). A running one is
        answered as it is."""
        async with self.moving(ref.sandbox_id):
            return await self._resume(ref)

    async def _resume(self, ref: SandboxRef) -> Sandbox:
        sandbox = await self.get(ref)
        driver = self._pausing_driver()
        if sandbox.status is SandboxStatus.RUNNING:
            if isinstance(driver, Pauses):
                await self._finish_cut_resume(driver, sandbox)
            return sandbox
        resumed = await self._store.unpause(sandbox, self._quota(ref.caller))
        if resumed is None:  # it moved meanwhile (another replica's resume: answered as is)
            return _as_it_is(await self.get(ref), SandboxStatus.RUNNING)
        if isinstance(driver, PauseBySnapshot):
            restored = await driver.resume(resumed)
            if restored is None:  # ended meanwhile
                raise not_running(await self._store.get(sandbox.id) or resumed)
            resumed = restored
        else:
            try:
                await driver.resume(await self._store.runtime_id(sandbox.id))
            except DriverError as exc:
                await self.end(
                    resumed,
                    SandboxStatus.FAILED,
                    SandboxEventName.FAILED,
                    f"resume failed: {exc}",
                )
                raise _driver_error(exc) from exc
            resumed = resumed.model_copy(update={"memory_kept": True})
        await self._bus.event(subjects.sandbox_event(sandbox.id, SandboxEventName.RESUMED), resumed)
        log.info("sandbox_resumed", sandbox_id=sandbox.id, memory_kept=resumed.memory_kept)
        return resumed

    async def _finish_cut_resume(self, driver: Pauses, sandbox: Sandbox) -> None:
        """A `running` sandbox still frozen: a resume cut between its row and its thaw
        (sandbox-svc killed). A resume asked now thaws it at once, with the event the cut
        one never sent (`PauseRepair` would, a minute later)."""
        runtime_id = await self._store.runtime_id(sandbox.id)
        try:
            if not await driver.is_paused(runtime_id):
                return
            await driver.resume(runtime_id)
        except DriverError as exc:
            raise _driver_error(exc) from exc
        resumed = sandbox.model_copy(update={"memory_kept": True})
        await self._bus.event(subjects.sandbox_event(sandbox.id, SandboxEventName.RESUMED), resumed)
        log.warning("sandbox_cut_resume_finished", sandbox_id=sandbox.id)

    async def _restored(self, sandbox_id: str, info: dict[str, Any]) -> dict[str, Any]:
        """A `running` row without an endpoint is being resumed by snapshot, perhaps by
        another replica (its row moves first, its new runtime's endpoint comes once the
        workspace is restored): wait for that, up to RESTORE_WAIT (the request is kept
        alive meanwhile), rather than refuse "sandbox is running"."""
        deadline = time.monotonic() + RESTORE_WAIT
        while info["status"] == SandboxStatus.RUNNING and not info["endpoint"]:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
            info = await self._store.connection_info(sandbox_id) or info
        return info

    async def resolve(self, ref: SandboxRef) -> ResolvedSandbox:
        """How to reach the sandbox's agent. A paused sandbox is 409 `sandbox_paused`, or
        resumed first if it was created with `autoResume` (every call that reaches an
        agent — executions, files, packages, terminals — resolves through here)."""
        info = await self._store.connection_info(ref.sandbox_id)
        if info is None or not ref.caller.can_access(info["owner_id"]):
            raise ServiceError(ErrorCode.NOT_FOUND, f"sandbox {ref.sandbox_id} not found")
        if info["status"] == SandboxStatus.PAUSED:
            if not info["auto_resume"]:
                raise ServiceError(
                    ErrorCode.SANDBOX_PAUSED,
                    f"sandbox {ref.sandbox_id} is paused: resume it first",
                    {"status": SandboxStatus.PAUSED},
                )
            await self.resume(ref)
            info = await self._store.connection_info(ref.sandbox_id) or info
        if info["status"] == SandboxStatus.RUNNING and not info["endpoint"]:
            info = await self._restored(ref.sandbox_id, info)
        if info["status"] != SandboxStatus.RUNNING or not info["endpoint"]:
            raise ServiceError(
                ErrorCode.SANDBOX_NOT_RUNNING,
                f"sandbox {ref.sandbox_id} is {info['status']}",
                {"status": info["status"]},
            )
        return ResolvedSandbox(
            sandbox_id=ref.sandbox_id,
            owner_id=info["owner_id"],
            status=SandboxStatus(info["status"]),
            endpoint=info["endpoint"],
            token=info["token"],
        )


def _as_it_is(sandbox: Sandbox, wanted: SandboxStatus) -> Sandbox:
    """A sandbox another call moved to `wanted` meanwhile; else its refusal."""
    if sandbox.status is not wanted:
        raise not_running(sandbox)
    return sandbox


def _driver_error(exc: DriverError) -> ServiceError:
    if isinstance(exc, UnsupportedSpec):
        return ServiceError(ErrorCode.NOT_IMPLEMENTED, str(exc))
    return ServiceError(ErrorCode.RUNTIME_UNAVAILABLE, str(exc))
