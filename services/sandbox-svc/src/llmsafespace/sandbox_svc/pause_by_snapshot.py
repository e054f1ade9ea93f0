"""Pause where the driver cannot freeze (Kubernetes): the workspace goes to an internal
snapshot and the runtime is destroyed; resume creates a new runtime under the sandbox's
own id and restores the workspace into it. Files are kept, the interpreter's memory is
not. The internal snapshot is neither listed nor counted in the owner's snapshot quota,
and it is deleted once the sandbox has resumed or ended."""

import asyncio

import structlog

from llmsafespace.contracts import ErrorCode, Sandbox, ServiceError
from llmsafespace.runtime import Driver, DriverError, RuntimeId, RuntimeSpec

from .chunks import ChunkStoreError
from .runtime_spec import runtime_spec
from .snapshots import Snapshots
from .store import SandboxStore
from .template_store import TemplateStore

log = structlog.get_logger()


class PauseBySnapshot:
    def __init__(
        self,
        store: SandboxStore,
        driver: Driver,
        snapshots: Snapshots,
        templates: TemplateStore | None,
    ) -> None:
        self._store = store
        self._driver = driver
        self._snapshots = snapshots
        self._templates = templates

    async def pause(self, paused: Sandbox) -> None:
        """The sandbox's row is `paused` already: keep its workspace, then let its runtime
        go. Raises ServiceError if the workspace cannot be kept; the runtime is untouched
        then."""
        info = await self._store.connection_info(paused.id)
        runtime_id = await self._store.runtime_id(paused.id)
        if info is None or not info["endpoint"]:
            raise ServiceError(ErrorCode.SANDBOX_NOT_RUNNING, f"sandbox {paused.id} has no runtime")
        snapshot_id = await self._snapshots.take_internal(paused, info["endpoint"], info["token"])
        if not await self._store.release_runtime(paused.id, snapshot_id):
            await self._snapshots.drop_internal(snapshot_id)  # it ended meanwhile
            return
        try:
            await self._driver.destroy(runtime_id)
        except DriverError as exc:  # paused all the same: the end (or warmpool-svc) sweeps it
            log.warning("paused_runtime_not_destroyed", runtime_id=runtime_id, error=str(exc))
        log.info("sandbox_paused_by_snapshot", sandbox_id=paused.id, snapshot_id=snapshot_id)

    async def resume(self, resumed: Sandbox) -> Sandbox | None:
        """The row is `running` again (quota admitted, clock moved): create its runtime,
        restore the workspace, record the runtime and drop the snapshot (`memoryKept`
        false). None when the sandbox ended meanwhile. If the runtime cannot be made or
        restored, the sandbox is paused again, its workspace still kept (a later resume
        may succeed), and a ServiceError (runtime_unavailable, 503) is raised: the driver
        failed, the agent did, or the chunk store (S3 refusing or out of reach)."""
        try:
            restored = await self._restore(resumed)
        except (DriverError, OSError, ChunkStoreError) as exc:
            await asyncio.shield(self._store.pause(resumed, None))
            raise ServiceError(
                ErrorCode.RUNTIME_UNAVAILABLE, f"resume failed, still paused: {exc}"
            ) from exc
        return None if restored is None else restored.model_copy(update={"memory_kept": False})

    async def _restore(self, resumed: Sandbox) -> Sandbox | None:
        snapshot_id = await self._store.pause_snapshot(resumed.id)
        stored = None if snapshot_id is None else await self._snapshots.internal(snapshot_id)
        if snapshot_id is None or stored is None:
            raise DriverError(f"sandbox {resumed.id}: its paused workspace is gone")
        handle = await self._driver.create(await self._spec(resumed))
        try:
            await self._snapshots.restore(stored, handle.endpoint, handle.token)
            attached = await self._store.attach_runtime(resumed.id, handle.endpoint, handle.token)
        except BaseException:
            await asyncio.shield(self._driver.destroy(RuntimeId(resumed.id)))
            raise
        if attached is None:
            await self._driver.destroy(RuntimeId(resumed.id))
            return None
        await self._snapshots.drop_internal(snapshot_id)
        log.info("sandbox_resumed_from_snapshot", sandbox_id=resumed.id, snapshot_id=snapshot_id)
        return attached

    async def discard(self, sandbox_id: str) -> None:
        """The sandbox ended: its internal snapshot, if any, goes."""
        snapshot_id = await self._store.pause_snapshot(sandbox_id)
        if snapshot_id is not None:
            await self._snapshots.drop_internal(snapshot_id)

    async def _spec(self, sandbox: Sandbox) -> RuntimeSpec:
        """The runtime the sandbox was created with: its runtime, resources, security
        level, env, network access and template layer."""
        env, template, network = await self._store.runtime_inputs(sandbox.id)
        layer = None
        if template is not None and self._templates is not None:
            found = await self._templates.get(template)
            layer = None if found is None else found.layer
        return runtime_spec(
            sandbox.id,
            sandbox.runtime,
            sandbox.resources,
            sandbox.security_level,
            env,
            network,
            layer,
        )
