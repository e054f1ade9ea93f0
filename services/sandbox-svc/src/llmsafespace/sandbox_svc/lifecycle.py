"""Sandbox lifecycle: create (warm claim first, cold otherwise), get, terminate, resolve."""

import asyncio
import time

import structlog

from llmsafespace.contracts import (
    Catalog,
    ClaimResult,
    ClaimWarmSandbox,
    CreateSandbox,
    ErrorCode,
    NetworkAccess,
    ResolvedSandbox,
    Role,
    RuntimeHold,
    RuntimeHoldQuery,
    Sandbox,
    SandboxRef,
    SandboxStatus,
    ServiceError,
    new_sandbox_id,
    quantity_bytes,
    subjects,
)
from llmsafespace.runtime import (
    Driver,
    DriverError,
    NetworkRule,
    RuntimeSpec,
    UnknownRuntime,
    UnsupportedSpec,
)
from llmsafespace.servicekit import Bus

from .metrics import CREATE_SECONDS, CREATIONS
from .quota import Quota
from .store import Adopted, SandboxStore
from .template_store import TemplateStore

log = structlog.get_logger()


class Lifecycle:
    def __init__(
        self,
        store: SandboxStore,
        driver: Driver,
        bus: Bus,
        catalog: Catalog,
        claim_timeout: float = 2.0,
        quota: Quota | None = None,
        templates: TemplateStore | None = None,
    ) -> None:
        self._store = store
        self._driver = driver
        self._bus = bus
        self._catalog = catalog
        self._claim_timeout = claim_timeout
        self._quota_limits = quota
        self._templates = templates

    async def create(self, command: CreateSandbox) -> Sandbox:
        command, layer = await self._with_template(command)
        request = command.request
        self._catalog.runtime(request.runtime)  # an unknown runtime is a 400 before any row
        sandbox_id = new_sandbox_id()
        structlog.contextvars.bind_contextvars(sandbox_id=sandbox_id)
        started = time.perf_counter()
        # Warm sandboxes have no network: `networkAccess` means a cold create. `env` is
        # applied to a warm sandbox when it is claimed.
        warm = request.use_warm_pool and request.network_access is None
        claim = await self._claim(sandbox_id, command) if warm else ClaimResult(hit=False)
        if claim.hit and claim.endpoint and claim.token and claim.runtime_id:
            adopted = Adopted(claim.runtime_id, claim.endpoint, claim.token)
            sandbox = await self._adopt(sandbox_id, command, adopted)
        else:
            sandbox = await self._create_cold(sandbox_id, command, layer)
        source = "warm" if claim.hit else "cold"
        CREATIONS.labels(source=source).inc()
        CREATE_SECONDS.labels(source=source).observe(time.perf_counter() - started)
        log.info("sandbox_created", warm=claim.hit, runtime=request.runtime)
        return sandbox

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

    def _quota(self, command: CreateSandbox) -> Quota | None:
        return None if command.caller.role is Role.ADMIN else self._quota_limits  # admins exempt

    async def _adopt(self, sandbox_id: str, command: CreateSandbox, adopted: Adopted) -> Sandbox:
        """The warm path: the row is born `running` on the claimed runtime, in one insert
        (owner, metadata and lifetime are the row's: the claim needs nothing more). If the
        insert is refused (a quota) or interrupted, nobody will use that runtime: it goes.
        (Until the row exists, warmpool-svc's sweep leaves a fresh claim alone.)"""
        try:
            sandbox = await self._store.insert(
                sandbox_id, command.caller.user_id, command.request, self._quota(command), adopted
            )
        except BaseException:
            await asyncio.shield(self._abandon(sandbox_id, adopted.runtime_id))
            raise
        await self._bus.event(subjects.sandbox_event(sandbox_id, "created"), sandbox)
        await self._bus.event(subjects.sandbox_event(sandbox_id, "running"), sandbox)
        return sandbox

    async def _abandon(self, sandbox_id: str, runtime_id: str) -> None:
        await self._fail(sandbox_id, "creation interrupted")  # if the row made it in
        await self._driver.destroy(runtime_id)

    async def _create_cold(
        self, sandbox_id: str, command: CreateSandbox, layer: str | None = None
    ) -> Sandbox:
        created = await self._store.insert(
            sandbox_id, command.caller.user_id, command.request, self._quota(command)
        )
        await self._bus.event(subjects.sandbox_event(sandbox_id, "created"), created)
        try:
            endpoint, token = await self._cold_create(sandbox_id, command, layer)
            sandbox = await self._store.mark_running(
                sandbox_id, endpoint, token, runtime_id=sandbox_id, from_warm_pool=False
            )
        except BaseException:
            # Interrupted (a shutdown, a lost reply): the row must not stay `creating`.
            await asyncio.shield(self._fail(sandbox_id, "creation interrupted"))
            raise
        if sandbox is None:  # ended while it was being created (expired, or deleted)
            await self._driver.destroy(sandbox_id)
            raise ServiceError(
                ErrorCode.SANDBOX_NOT_RUNNING, f"sandbox {sandbox_id} ended while being created"
            )
        await self._bus.event(subjects.sandbox_event(sandbox_id, "running"), sandbox)
        return sandbox

    async def _claim(self, sandbox_id: str, command: CreateSandbox) -> ClaimResult:
        request = command.request
        claim = ClaimWarmSandbox(
            caller=command.caller,
            sandbox_id=sandbox_id,
            runtime=request.runtime,
            security_level=request.security_level,
            resources=request.resources,
            env=request.env,
            template=request.template,
        )
        try:
            return await self._bus.request(
                subjects.WARMPOOL_CLAIM, claim, ClaimResult, timeout=self._claim_timeout
            )
        except ServiceError as exc:
            log.warning("warm_claim_failed", code=exc.code, error=exc.message)
            return ClaimResult(hit=False)

    async def _cold_create(
        self, sandbox_id: str, command: CreateSandbox, layer: str | None = None
    ) -> tuple[str, str]:
        request = command.request
        spec = RuntimeSpec(
            sandbox_id=sandbox_id,
            runtime=request.runtime,
            cpu=request.resources.cpu,
            memory_bytes=quantity_bytes(request.resources.memory),
            storage_bytes=quantity_bytes(request.resources.ephemeral_storage),
            env=request.env,
            network_ports=None
            if request.network_access is None
            else request.network_access.ports(),
            network_rules=_network_rules(request.network_access),
            security_level=request.security_level.value,
            template_layer=layer,
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
            await self._fail(sandbox_id, str(exc))
            raise ServiceError(ErrorCode.RUNTIME_UNAVAILABLE, str(exc)) from exc
        except BaseException:
            await asyncio.shield(self._driver.destroy(sandbox_id))
            raise
        return handle.endpoint, handle.token

    async def _fail(self, sandbox_id: str, reason: str) -> None:
        sandbox = await self._store.mark_ended(sandbox_id, SandboxStatus.FAILED, reason)
        if sandbox:
            await self._bus.event(subjects.sandbox_event(sandbox_id, "failed"), sandbox)

    async def hold(self, query: RuntimeHoldQuery) -> RuntimeHold:
        return RuntimeHold(state=await self._store.hold(query.sandbox_id, query.runtime_id))

    async def get(self, ref: SandboxRef) -> Sandbox:
        sandbox = await self._store.get(ref.sandbox_id)
        if sandbox is None or not ref.caller.can_access(sandbox.owner_id):
            raise ServiceError(ErrorCode.NOT_FOUND, f"sandbox {ref.sandbox_id} not found")
        return sandbox

    async def terminate(self, ref: SandboxRef) -> Sandbox:
        sandbox = await self.get(ref)
        return await self.end(sandbox, SandboxStatus.TERMINATED, "terminated", None)

    async def end(
        self, sandbox: Sandbox, status: SandboxStatus, event: str, reason: str | None
    ) -> Sandbox:
        """Destroy the runtime and record the outcome; idempotent."""
        await self._driver.destroy(await self._store.runtime_id(sandbox.id) or sandbox.id)
        ended = await self._store.mark_ended(sandbox.id, status, reason)
        if ended is None:
            return await self._store.get(sandbox.id) or sandbox
        await self._bus.event(subjects.sandbox_event(sandbox.id, event), ended)
        log.info("sandbox_ended", sandbox_id=sandbox.id, status=status, reason=reason)
        return ended

    async def resolve(self, ref: SandboxRef) -> ResolvedSandbox:
        info = await self._store.connection_info(ref.sandbox_id)
        if info is None or not ref.caller.can_access(info["owner_id"]):
            raise ServiceError(ErrorCode.NOT_FOUND, f"sandbox {ref.sandbox_id} not found")
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


def _network_rules(access: NetworkAccess | None) -> tuple[NetworkRule, ...]:
    if access is None or not access.enabled:
        return ()
    return tuple(
        NetworkRule(ports=tuple(rule.ports), hosts=tuple(rule.hosts), cidrs=tuple(rule.cidrs))
        for rule in access.egress
    )
