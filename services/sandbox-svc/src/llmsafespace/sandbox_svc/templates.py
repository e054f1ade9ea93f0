"""Templates: built once in a builder sandbox, kept by the driver as a read-only layer.

`create` records the template (`building`), starts its builder (an ordinary sandbox of the
owner's, cold, with network where the host offers it) and hands the build to exec-svc,
which runs it as one execution (followed on the builder's WebSocket) and reports the
outcome with `cmd.template.built`. `built` then has the driver keep the builder's
workspace as the layer (`KeepsTemplates.keep_layer`) and ends the builder. Sandboxes and
warm pools of the template find that layer at /opt/template: bound read-only by the local
driver, copied into each Pod by the Kubernetes driver before the sandbox is handed out.
"""

import secrets

import structlog

from llmsafespace.contracts import (
    BuildTemplate,
    Caller,
    Catalog,
    CreateSandbox,
    CreateSandboxRequest,
    CreateTemplate,
    ErrorCode,
    ListTemplates,
    NetworkAccess,
    Resources,
    Role,
    SandboxRef,
    ServiceError,
    Template,
    TemplateBuilt,
    TemplateList,
    TemplatePoolsQuery,
    TemplateRef,
    TemplateSpec,
    TemplateStatus,
    commands,
    new_execution_id,
)
from llmsafespace.runtime import Driver, DriverError, KeepsTemplates, RuntimeId
from llmsafespace.servicekit import Bus

from .lifecycle import Lifecycle
from .quota import LAYER_STORAGE, Quota
from .template_store import TemplateStore

log = structlog.get_logger()
BUILDER_GRACE = 300  # seconds the builder outlives the build's timeout, to keep the layer
UNSUPPORTED = (
    "templates are not available with this deployment's sandbox driver (it keeps no "
    "layers): use a runtime that has the packages"
)


class Templates:
    def __init__(
        self,
        store: TemplateStore,
        lifecycle: Lifecycle,
        driver: Driver,
        bus: Bus,
        catalog: Catalog,
        quota: Quota | None = None,
    ) -> None:
        self._store = store
        self._lifecycle = lifecycle
        self._driver = driver
        self._bus = bus
        self._catalog = catalog
        self._quota = quota  # how many templates an ordinary user keeps; admins are exempt

    async def create(self, command: CreateTemplate) -> Template:
        spec, caller = command.spec, command.caller
        if spec.public and caller.role is not Role.ADMIN:
            raise ServiceError(
                ErrorCode.FORBIDDEN,
                "only admins may publish a public template",
                {"fields": {"public": "admins only"}},
            )
        self._catalog.runtime(spec.runtime)  # an unknown runtime is a 400 before any row
        if not isinstance(self._driver, KeepsTemplates):
            raise ServiceError(ErrorCode.INVALID_REQUEST, UNSUPPORTED)
        quota = None if caller.role is Role.ADMIN else self._quota
        template = await self._store.insert(caller.user_id, spec, quota)
        structlog.contextvars.bind_contextvars(template=spec.name)
        try:
            builder = await self._lifecycle.create(
                CreateSandbox(caller=caller, request=self._builder(spec))
            )
        except ServiceError as exc:
            if exc.code is ErrorCode.QUOTA_EXCEEDED:  # the builder (and so its layer) does
                await self._store.delete(spec.name)  # not fit: refused, not kept as failed
                raise
            reason = f"the builder sandbox did not start: {exc.message}"
            return await self._failed(template, reason)
        execution_id = new_execution_id()
        template = await self._store.started(spec.name, builder.id, execution_id) or template
        build = BuildTemplate(
            caller=caller,
            name=spec.name,
            sandbox_id=builder.id,
            execution_id=execution_id,
            packages=spec.packages,
            setup_commands=spec.setup_commands,
            timeout=spec.timeout,
        )
        try:
            await self._bus.request(commands.EXEC_TEMPLATE_BUILD, build)
        except ServiceError as exc:
            await self._end_builder(template.owner_id, builder.id)
            reason = f"the build did not start: {exc.message}"
            return await self._failed(template, reason)
        log.info("template_build_started", sandbox_id=builder.id, execution_id=execution_id)
        return template

    async def _failed(self, template: Template, reason: str) -> Template:
        failed = await self._store.finish(template.name, TemplateStatus.FAILED, reason, "", None)
        log.warning("template_build_failed", template=template.name, reason=reason)
        return failed or template

    def _builder(self, spec: TemplateSpec) -> CreateSandboxRequest:
        """A cold sandbox of the template's runtime; with network if the host has it (the
        installs also work without, through exec-svc's package mirror). Its workspace, which
        becomes the layer, is `LAYER_STORAGE`: what a ready layer counts against the owner's
        storage quota."""
        networked = self._driver.protections().get("network") not in (None, "none")
        return CreateSandboxRequest(
            runtime=spec.runtime,
            resources=Resources(ephemeral_storage=LAYER_STORAGE),
            timeout=int(spec.timeout) + BUILDER_GRACE,
            use_warm_pool=False,
            metadata={"llmsafespace.template": spec.name},
            network_access=NetworkAccess(enabled=True) if networked else None,
        )

    async def built(self, outcome: TemplateBuilt) -> Template:
        """Keep the layer of a successful build, record the outcome, end the builder."""
        template = await self._store.get(outcome.name)
        if template is None or template.build_sandbox_id != outcome.sandbox_id:
            await self._driver.destroy(
                RuntimeId(outcome.sandbox_id)
            )  # its row expires with its timeout
            raise ServiceError(ErrorCode.NOT_FOUND, f"template {outcome.name!r} not found")
        reason, layer = outcome.reason, None
        if reason is None and isinstance(self._driver, KeepsTemplates):
            layer = f"{outcome.name}-{secrets.token_hex(4)}"
            try:  # a cold builder's runtime id is its sandbox id
                await self._driver.keep_layer(RuntimeId(outcome.sandbox_id), layer)
            except DriverError as exc:
                reason, layer = f"keeping the built environment failed: {exc}", None
        await self._end_builder(template.owner_id, outcome.sandbox_id)  # before it shows
        status = TemplateStatus.READY if reason is None else TemplateStatus.FAILED
        finished = await self._store.finish(outcome.name, status, reason, outcome.log_tail, layer)
        if finished is None and layer is not None and isinstance(self._driver, KeepsTemplates):
            await self._driver.drop_layer(layer)  # deleted while it was being built
        log.info("template_build_finished", template=outcome.name, status=status, reason=reason)
        return finished or template

    async def _end_builder(self, owner_id: str, sandbox_id: str) -> None:
        ref = SandboxRef(caller=Caller(user_id=owner_id), sandbox_id=sandbox_id)
        try:
            await self._lifecycle.terminate(ref)
        except ServiceError:  # its row is gone: the runtime must go too
            await self._driver.destroy(RuntimeId(sandbox_id))

    async def _visible(self, ref: TemplateRef) -> Template:
        template = await self._store.get(ref.name)
        if template is None or not (
            template.spec.public or ref.caller.can_access(template.owner_id)
        ):
            raise ServiceError(ErrorCode.NOT_FOUND, f"template {ref.name!r} not found")
        return template

    async def get(self, ref: TemplateRef) -> Template:
        return await self._visible(ref)

    async def list(self, query: ListTemplates) -> TemplateList:
        caller = query.caller
        return TemplateList(
            templates=await self._store.visible(caller.user_id, caller.role is Role.ADMIN)
        )

    async def resolve(self, ref: TemplateRef) -> Template:
        return await self._store.ready(ref.caller, ref.name)

    async def delete(self, ref: TemplateRef) -> Template:
        """Refused (409) while a live sandbox or a warm pool uses it."""
        template = await self._visible(ref)
        if not ref.caller.can_access(template.owner_id):
            raise ServiceError(ErrorCode.NOT_FOUND, f"template {ref.name!r} not found")
        pools = await self._bus.request(
            commands.WARMPOOL_TEMPLATE_POOLS, TemplatePoolsQuery(name=ref.name)
        )
        if pools.pools:
            raise _in_use(ref.name, "warm pools", pools.pools)
        deleted = await self._store.delete(ref.name)
        if deleted is None:
            users = await self._store.users(ref.name)
            if users:
                raise _in_use(ref.name, "sandboxes", users)
            raise ServiceError(ErrorCode.NOT_FOUND, f"template {ref.name!r} not found")
        if deleted.layer is not None and isinstance(self._driver, KeepsTemplates):
            await self._driver.drop_layer(deleted.layer)
        log.info("template_deleted", template=ref.name)
        return deleted


def _in_use(name: str, kind: str, users: list[str]) -> ServiceError:
    return ServiceError(
        ErrorCode.CONFLICT,
        f"template {name!r} is in use by {kind}: {', '.join(users[:10])}",
        {kind.replace("warm pools", "warmPools"): users},
    )
