"""Thin subscribers: contract in, lifecycle call, contract out."""

from faststream.nats import NatsRouter

from llmsafespace.contracts import (
    Catalog,
    CatalogQuery,
    CreateSandbox,
    CreateSnapshot,
    CreateTemplate,
    ListSandboxes,
    ListSnapshots,
    ListTemplates,
    ResolvedSandbox,
    RuntimeHold,
    RuntimeHoldQuery,
    Sandbox,
    SandboxPage,
    SandboxRef,
    SandboxStatusReport,
    SetSandboxTimeout,
    Snapshot,
    SnapshotPage,
    SnapshotRef,
    Template,
    TemplateBuilt,
    TemplateList,
    TemplateRef,
    subjects,
)

from .inventory import Inventory
from .lifecycle import Lifecycle
from .snapshots import Snapshots
from .templates import Templates


def create_router(
    lifecycle: Lifecycle, inventory: Inventory, snapshots: Snapshots, max_workers: int
) -> NatsRouter:
    router = NatsRouter()
    queue = subjects.SANDBOX_QUEUE

    @router.subscriber(subjects.SANDBOX_CREATE, queue=queue, max_workers=max_workers)
    async def create(command: CreateSandbox) -> Sandbox:
        return await lifecycle.create(command)

    @router.subscriber(subjects.SANDBOX_GET, queue=queue, max_workers=max_workers)
    async def get(ref: SandboxRef) -> Sandbox:
        return await lifecycle.get(ref)

    @router.subscriber(subjects.SANDBOX_TERMINATE, queue=queue, max_workers=max_workers)
    async def terminate(ref: SandboxRef) -> Sandbox:
        return await lifecycle.terminate(ref)

    @router.subscriber(subjects.SANDBOX_PAUSE, queue=queue, max_workers=max_workers)
    async def pause(ref: SandboxRef) -> Sandbox:
        return await lifecycle.pause(ref)

    @router.subscriber(subjects.SANDBOX_RESUME, queue=queue, max_workers=max_workers)
    async def resume(ref: SandboxRef) -> Sandbox:
        return await lifecycle.resume(ref)

    @router.subscriber(subjects.SANDBOX_HOLDS, queue=queue, max_workers=max_workers)
    async def holds(query: RuntimeHoldQuery) -> RuntimeHold:
        return await lifecycle.hold(query)

    @router.subscriber(subjects.SANDBOX_RESOLVE, queue=queue, max_workers=max_workers)
    async def resolve(ref: SandboxRef) -> ResolvedSandbox:
        return await lifecycle.resolve(ref)

    @router.subscriber(subjects.SANDBOX_LIST, queue=queue, max_workers=max_workers)
    async def list_sandboxes(query: ListSandboxes) -> SandboxPage:
        return await inventory.list(query)

    @router.subscriber(subjects.SANDBOX_STATUS, queue=queue, max_workers=max_workers)
    async def status(ref: SandboxRef) -> SandboxStatusReport:
        return await inventory.status(ref)

    @router.subscriber(subjects.SANDBOX_TIMEOUT, queue=queue, max_workers=max_workers)
    async def set_timeout(command: SetSandboxTimeout) -> Sandbox:
        return await inventory.set_timeout(command)

    @router.subscriber(subjects.SANDBOX_CATALOG, queue=queue, max_workers=max_workers)
    async def catalog(_: CatalogQuery) -> Catalog:
        return inventory.catalog

    @router.subscriber(subjects.SNAPSHOT_CREATE, queue=queue, max_workers=max_workers)
    async def snapshot(command: CreateSnapshot) -> Snapshot:
        return await snapshots.create(command)

    @router.subscriber(subjects.SNAPSHOT_GET, queue=queue, max_workers=max_workers)
    async def get_snapshot(ref: SnapshotRef) -> Snapshot:
        return await snapshots.get(ref)

    @router.subscriber(subjects.SNAPSHOT_LIST, queue=queue, max_workers=max_workers)
    async def list_snapshots(query: ListSnapshots) -> SnapshotPage:
        return await snapshots.list(query)

    @router.subscriber(subjects.SNAPSHOT_DELETE, queue=queue, max_workers=max_workers)
    async def delete_snapshot(ref: SnapshotRef) -> Snapshot:
        return await snapshots.delete(ref)

    return router


def create_template_router(templates: Templates, max_workers: int) -> NatsRouter:
    router = NatsRouter()
    queue = subjects.SANDBOX_QUEUE

    @router.subscriber(subjects.TEMPLATE_CREATE, queue=queue, max_workers=max_workers)
    async def create(command: CreateTemplate) -> Template:
        return await templates.create(command)

    @router.subscriber(subjects.TEMPLATE_GET, queue=queue, max_workers=max_workers)
    async def get(ref: TemplateRef) -> Template:
        return await templates.get(ref)

    @router.subscriber(subjects.TEMPLATE_LIST, queue=queue, max_workers=max_workers)
    async def list_templates(query: ListTemplates) -> TemplateList:
        return await templates.list(query)

    @router.subscriber(subjects.TEMPLATE_DELETE, queue=queue, max_workers=max_workers)
    async def delete(ref: TemplateRef) -> Template:
        return await templates.delete(ref)

    @router.subscriber(subjects.TEMPLATE_RESOLVE, queue=queue, max_workers=max_workers)
    async def resolve(ref: TemplateRef) -> Template:
        return await templates.resolve(ref)

    @router.subscriber(subjects.TEMPLATE_BUILT, queue=queue, max_workers=max_workers)
    async def built(outcome: TemplateBuilt) -> Template:
        return await templates.built(outcome)

    return router
