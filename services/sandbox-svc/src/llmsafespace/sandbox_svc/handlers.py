"""Thin subscribers: contract in, lifecycle call, contract out."""

from llmsafespace.contracts import (
    Catalog,
    CatalogQuery,
    CreateSandbox,
    CreateSnapshot,
    CreateTemplate,
    ListSandboxes,
    ListSnapshots,
    ListTemplates,
    PoolReservation,
    ResolvedSandbox,
    RestoreSnapshot,
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
    commands,
)
from llmsafespace.servicekit import Router, handles

from .inventory import Inventory
from .lifecycle import Lifecycle
from .snapshots import Snapshots
from .templates import Templates


def create_router(
    lifecycle: Lifecycle, inventory: Inventory, snapshots: Snapshots, max_workers: int
) -> Router:
    router = Router()

    @handles(router, commands.SANDBOX_CREATE, max_workers=max_workers)
    async def create(command: CreateSandbox) -> Sandbox:
        return await lifecycle.create(command)

    @handles(router, commands.SANDBOX_GET, max_workers=max_workers)
    async def get(ref: SandboxRef) -> Sandbox:
        return await lifecycle.get(ref)

    @handles(router, commands.SANDBOX_TERMINATE, max_workers=max_workers)
    async def terminate(ref: SandboxRef) -> Sandbox:
        return await lifecycle.terminate(ref)

    @handles(router, commands.SANDBOX_PAUSE, max_workers=max_workers)
    async def pause(ref: SandboxRef) -> Sandbox:
        return await lifecycle.pause(ref)

    @handles(router, commands.SANDBOX_RESUME, max_workers=max_workers)
    async def resume(ref: SandboxRef) -> Sandbox:
        return await lifecycle.resume(ref)

    @handles(router, commands.SANDBOX_RESERVE, max_workers=max_workers)
    async def reserve(reservation: PoolReservation) -> PoolReservation:
        return await inventory.reserve(reservation)

    @handles(router, commands.SANDBOX_RESOLVE, max_workers=max_workers)
    async def resolve(ref: SandboxRef) -> ResolvedSandbox:
        return await lifecycle.resolve(ref)

    @handles(router, commands.SANDBOX_LIST, max_workers=max_workers)
    async def list_sandboxes(query: ListSandboxes) -> SandboxPage:
        return await inventory.list(query)

    @handles(router, commands.SANDBOX_STATUS, max_workers=max_workers)
    async def status(ref: SandboxRef) -> SandboxStatusReport:
        return await inventory.status(ref)

    @handles(router, commands.SANDBOX_TIMEOUT, max_workers=max_workers)
    async def set_timeout(command: SetSandboxTimeout) -> Sandbox:
        return await inventory.set_timeout(command)

    @handles(router, commands.SANDBOX_CATALOG, max_workers=max_workers)
    async def catalog(_: CatalogQuery) -> Catalog:
        return inventory.catalog

    @handles(router, commands.SNAPSHOT_CREATE, max_workers=max_workers)
    async def snapshot(command: CreateSnapshot) -> Snapshot:
        async with lifecycle.moving(command.sandbox_id):
            return await snapshots.create(command)

    @handles(router, commands.SNAPSHOT_GET, max_workers=max_workers)
    async def get_snapshot(ref: SnapshotRef) -> Snapshot:
        return await snapshots.get(ref)

    @handles(router, commands.SNAPSHOT_LIST, max_workers=max_workers)
    async def list_snapshots(query: ListSnapshots) -> SnapshotPage:
        return await snapshots.list(query)

    @handles(router, commands.SNAPSHOT_DELETE, max_workers=max_workers)
    async def delete_snapshot(ref: SnapshotRef) -> Snapshot:
        return await snapshots.delete(ref)

    @handles(router, commands.SNAPSHOT_RESTORE, max_workers=max_workers)
    async def restore_snapshot(command: RestoreSnapshot) -> Snapshot:
        return await snapshots.restore_into(command)

    return router


def create_template_router(templates: Templates, max_workers: int) -> Router:
    router = Router()

    @handles(router, commands.TEMPLATE_CREATE, max_workers=max_workers)
    async def create(command: CreateTemplate) -> Template:
        return await templates.create(command)

    @handles(router, commands.TEMPLATE_GET, max_workers=max_workers)
    async def get(ref: TemplateRef) -> Template:
        return await templates.get(ref)

    @handles(router, commands.TEMPLATE_LIST, max_workers=max_workers)
    async def list_templates(query: ListTemplates) -> TemplateList:
        return await templates.list(query)

    @handles(router, commands.TEMPLATE_DELETE, max_workers=max_workers)
    async def delete(ref: TemplateRef) -> Template:
        return await templates.delete(ref)

    @handles(router, commands.TEMPLATE_RESOLVE, max_workers=max_workers)
    async def resolve(ref: TemplateRef) -> Template:
        return await templates.resolve(ref)

    @handles(router, commands.TEMPLATE_BUILT, max_workers=max_workers)
    async def built(outcome: TemplateBuilt) -> Template:
        return await templates.built(outcome)

    return router
