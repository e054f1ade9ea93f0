"""Warm pool definitions (owned by a user; admins see all) and the atomic claim."""

from collections.abc import Callable

import asyncpg
import structlog

from llmsafespace.contracts import (
    Caller,
    Catalog,
    ClaimResult,
    ClaimWarmSandbox,
    CreateWarmPool,
    ErrorCode,
    ListWarmPools,
    PoolCondition,
    ReleaseWarmClaim,
    Role,
    RuntimeId,
    ServiceError,
    SnapshotPools,
    SnapshotPoolsQuery,
    SnapshotRef,
    TemplatePools,
    TemplatePoolsQuery,
    TemplateRef,
    UpdateWarmPool,
    WarmClaimReleased,
    WarmPool,
    WarmPoolEvent,
    WarmPoolEventName,
    WarmPoolList,
    WarmPoolRef,
    WarmPoolSpec,
    WarmPoolStatus,
    WarmSandboxState,
    commands,
    subjects,
)
from llmsafespace.runtime import AgentClient, Driver, DriverError
from llmsafespace.servicekit import Bus

from .metrics import Metrics
from .pool_names import pool_key
from .pool_quota import PoolLimits, reservation
from .store import PoolStore, stored_spec

log = structlog.get_logger()


def _conditions(row: asyncpg.Record, counts: dict[WarmSandboxState, int]) -> list[PoolCondition]:
    ready = counts.get(WarmSandboxState.READY, 0)
    pending = counts.get(WarmSandboxState.PENDING, 0)
    desired = row["desired"]
    conditions = [
        PoolCondition(
            type="Ready",
            status="True" if ready >= desired else "False",
            reason="MinimumAvailable" if ready >= desired else "Replenishing",
            message=f"{ready} of {desired} ready",
        ),
        PoolCondition(type="Replenishing", status="True" if pending else "False"),
    ]
    if row["last_error"]:
        conditions.append(
            PoolCondition(
                type="Failing", status="True", reason="StartFailed", message=row["last_error"]
            )
        )
    return conditions


def pool_view(
    row: asyncpg.Record, counts: dict[WarmSandboxState, int], spec: WarmPoolSpec | None = None
) -> WarmPool:
    """The pool as its clients see it: named as they named it (the row's key is internal)."""
    spec = spec or WarmPoolSpec.model_validate_json(row["spec"])
    return WarmPool(
        name=spec.name,
        owner_id=row["owner_id"],
        spec=spec,
        status=WarmPoolStatus(
            available_pods=counts.get(WarmSandboxState.READY, 0),
            assigned_pods=counts.get(WarmSandboxState.ASSIGNED, 0),
            pending_pods=counts.get(WarmSandboxState.PENDING, 0),
            desired_pods=row["desired"],
            last_scale_time=row["last_scale_time"],
            conditions=_conditions(row, counts),
        ),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class Pools:
    def __init__(
        self,
        store: PoolStore,
        driver: Driver,
        bus: Bus,
        catalog: Catalog,
        metrics: Metrics,
        wake: Callable[[str], None],
        claimed: Callable[[str], None] | None = None,
        limits: PoolLimits | None = None,
    ) -> None:
        self._store = store
        self._driver = driver
        self._bus = bus
        self._catalog = catalog
        self._metrics = metrics
        self._wake = wake
        self._claimed = claimed or wake  # tends a pool after a claim
        self._limits = limits  # what ordinary users' pools may hold; admins are exempt

    async def _reserve(self, key: str, owner_id: str, spec: WarmPoolSpec | None) -> None:
        """Tell sandbox-svc what the pool reserves of its owner's sandbox quota (its table,
        counted in every quota check of the owner); a refusal undoes the pool change."""
        await self._bus.request(commands.SANDBOX_RESERVE, reservation(key, owner_id, spec))

    def _limits_for(self, caller: Caller, spec: WarmPoolSpec) -> PoolLimits | None:
        if caller.role is Role.ADMIN or self._limits is None:
            return None
        self._limits.check_size(spec)
        return self._limits

    async def _view(self, row: asyncpg.Record) -> WarmPool:
        counts = await self._store.counts([row["name"]])
        return pool_view(row, counts[row["name"]])

    async def _owned(self, caller: Caller, name: str) -> asyncpg.Record:
        """The caller's pool called `name`. An admin reaches its own (shared) pools by name
        and a user's by name too while no other pool has it (else 409, naming owners)."""
        row = await self._store.get_pool(pool_key(caller, name))
        if row is None and caller.role is Role.ADMIN:
            named = await self._store.pools_named(name)
            if len(named) > 1:
                raise ServiceError(
                    ErrorCode.CONFLICT,
                    f"several users have a warm pool named {name!r}",
                    {"name": name, "ownerIds": [each["owner_id"] for each in named]},
                )
            row = named[0] if named else None
        if row is None or not caller.can_access(row["owner_id"]):
            raise ServiceError(ErrorCode.NOT_FOUND, f"warm pool {name!r} not found")
        return row

    async def create(self, command: CreateWarmPool) -> WarmPool:
        _refuse_preload_packages(command.spec.preload_packages)
        spec = await self._with_snapshot(command.caller, command.spec)
        spec = await self._with_template(command.caller, spec)
        self._catalog.runtime(spec.runtime)
        shared = command.caller.role is Role.ADMIN
        limits = self._limits_for(command.caller, spec)
        key = pool_key(command.caller, command.spec.name)
        row = await self._store.create_pool(
            key, command.caller.user_id, shared, spec, limits, self._reserve
        )
        log.info("warm_pool_created", pool=key, min_size=command.spec.min_size)
        self._wake(key)
        return await self._view(row)

    async def _with_snapshot(self, caller: Caller, spec: WarmPoolSpec) -> WarmPoolSpec:
        """A pool of a snapshot runs the snapshot's runtime and template; the snapshot must
        be the caller's to use (else 404)."""
        if spec.snapshot is None:
            return spec
        ref = SnapshotRef(caller=caller, snapshot_id=spec.snapshot)
        snapshot = await self._bus.request(commands.SNAPSHOT_GET, ref)
        runtime = snapshot.runtime
        if "runtime" in spec.model_fields_set and spec.runtime != runtime:
            message = f"snapshot {snapshot.id} is of runtime {runtime!r}; omit `runtime`"
            raise ServiceError(ErrorCode.INVALID_REQUEST, message, {"fields": {"runtime": message}})
        if spec.template is not None and spec.template != snapshot.template:
            message = (
                f"snapshot {snapshot.id} is of template {snapshot.template!r}; omit `template`"
            )
            raise ServiceError(
                ErrorCode.INVALID_REQUEST, message, {"fields": {"template": message}}
            )
        return spec.model_copy(update={"runtime": runtime, "template": snapshot.template})

    async def _with_template(self, caller: Caller, spec: WarmPoolSpec) -> WarmPoolSpec:
        """A pool of a template runs the template's runtime; the template must be ready
        and the caller's to use (else a 400 naming those that are)."""
        if spec.template is None:
            return spec
        ref = TemplateRef(caller=caller, name=spec.template)
        template = await self._bus.request(commands.TEMPLATE_RESOLVE, ref)
        runtime = template.spec.runtime
        if "runtime" in spec.model_fields_set and spec.runtime != runtime:
            message = f"template {template.name!r} is of runtime {runtime!r}; omit `runtime`"
            raise ServiceError(ErrorCode.INVALID_REQUEST, message, {"fields": {"runtime": message}})
        return spec.model_copy(update={"runtime": runtime})

    async def snapshot_pools(self, query: SnapshotPoolsQuery) -> SnapshotPools:
        return SnapshotPools(pools=await self._store.snapshot_pools(query.snapshot_id))

    async def template_pools(self, query: TemplatePoolsQuery) -> TemplatePools:
        return TemplatePools(pools=await self._store.template_pools(query.name))

    async def get(self, ref: WarmPoolRef) -> WarmPool:
        return await self._view(await self._owned(ref.caller, ref.name))

    async def list(self, query: ListWarmPools) -> WarmPoolList:
        owner = None if query.caller.role is Role.ADMIN else query.caller.user_id
        rows = await self._store.pools(owner)
        counts = await self._store.counts([row["name"] for row in rows])
        specs = [(row, stored_spec(row)) for row in rows]
        return WarmPoolList(
            pools=[pool_view(row, counts[row["name"]], spec) for row, spec in specs if spec]
        )

    async def update(self, command: UpdateWarmPool) -> WarmPool:
        _refuse_preload_packages(command.update.preload_packages)
        row = await self._owned(command.caller, command.name)
        spec = command.update.apply(WarmPoolSpec.model_validate_json(row["spec"]))
        limits = self._limits_for(command.caller, spec)
        updated = await self._store.update_pool(
            row["name"], row["owner_id"], spec, limits, self._reserve
        )
        if updated is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"warm pool {command.name!r} not found")
        self._wake(row["name"])
        return await self._view(updated)

    async def delete(self, ref: WarmPoolRef) -> WarmPool:
        """Remove the pool and destroy its unassigned sandboxes; handed-out ones live on."""
        owned = await self._owned(ref.caller, ref.name)
        view = await self._view(owned)
        key = owned["name"]
        row, runtime_ids = await self._store.delete_pool(key, self._reserve)
        if row is None:
            raise ServiceError(ErrorCode.NOT_FOUND, f"warm pool {ref.name!r} not found")
        for runtime_id in runtime_ids:
            await self._driver.destroy(runtime_id)
        await self._bus.event(
            subjects.warmpool_event(key, WarmPoolEventName.DELETED),
            WarmPoolEvent(
                pool=key,
                event=WarmPoolEventName.DELETED,
                count=len(runtime_ids),
                runtime_ids=runtime_ids,
            ),
        )
        log.info("warm_pool_deleted", pool=key, destroyed=len(runtime_ids))
        return view

    async def claim(self, request: ClaimWarmSandbox) -> ClaimResult:
        """Step 2 of the handover (the protocol is `ClaimWarmSandbox`'s docstring)."""
        row = await self._store.claim(
            request.runtime,
            request.security_level,
            request.resources,
            request.caller.user_id,
            request.sandbox_id,
            request.template,
            request.snapshot,
        )
        self._metrics.claimed(request.runtime, row is not None)
        if row is None:
            log.debug("warm_claim_miss", runtime=request.runtime)
            return ClaimResult(hit=False)
        pool = row["pool"]
        self._claimed(pool)
        if request.env and not await _set_env(row["endpoint"], row["token"], request.env):
            await self.release(ReleaseWarmClaim(sandbox_id=request.sandbox_id))
            return ClaimResult(hit=False)
        runtime_id = RuntimeId(row["id"])
        await self._bus.event(
            subjects.warmpool_event(pool, WarmPoolEventName.CLAIMED),
            WarmPoolEvent(
                pool=pool,
                event=WarmPoolEventName.CLAIMED,
                count=1,
                runtime_ids=[runtime_id],
                sandbox_id=request.sandbox_id,
            ),
        )
        return ClaimResult(
            hit=True, runtime_id=runtime_id, endpoint=row["endpoint"], token=row["token"], pool=pool
        )

    async def release(self, request: ReleaseWarmClaim) -> WarmClaimReleased:
        """Step 4 of the handover: the sandbox will not run on what it claimed."""
        runtime_id = await self._store.release(request.sandbox_id)
        if runtime_id is None:
            return WarmClaimReleased()
        await self._driver.destroy(runtime_id)
        log.info("warm_claim_released", sandbox_id=request.sandbox_id, runtime_id=runtime_id)
        return WarmClaimReleased(runtime_id=runtime_id)


def _refuse_preload_packages(packages: list[str] | None) -> None:
    """`preloadPackages` cannot work (warm sandboxes have no network): templates replace
    it. (Pools defined before keep trying, and say why they fail.)"""
    if packages:
        message = (
            "preloadPackages is replaced by templates (warm sandboxes have no network): build "
            "one with POST /templates {name, packages: {pip: [...]}} and create the pool "
            "with `template`"
        )
        raise ServiceError(
            ErrorCode.INVALID_REQUEST, message, {"fields": {"preloadPackages": message}}
        )


async def _set_env(endpoint: str, token: str, env: dict[str, str]) -> bool:
    """Customise a claimed sandbox's environment; False if its agent did not take it."""
    try:
        client = await AgentClient.connect(endpoint, token)
        try:
            await client.set_env(env)
        finally:
            await client.close()
    except DriverError as exc:
        log.warning("warm_claim_env_failed", error=str(exc))
        return False
    return True
