"""Thin subscribers: contract in, lifecycle call, contract out."""

from faststream.nats import NatsRouter

from llmsafespace.contracts import (
    Catalog,
    CatalogQuery,
    CreateSandbox,
    ListSandboxes,
    ResolvedSandbox,
    RuntimeHold,
    RuntimeHoldQuery,
    Sandbox,
    SandboxPage,
    SandboxRef,
    SandboxStatusReport,
    SetSandboxTimeout,
    commands,
)
from llmsafespace.servicekit import handles

from .inventory import Inventory
from .lifecycle import Lifecycle


def create_router(lifecycle: Lifecycle, inventory: Inventory, max_workers: int) -> NatsRouter:
    router = NatsRouter()

    @handles(router, commands.SANDBOX_CREATE, max_workers=max_workers)
    async def create(command: CreateSandbox) -> Sandbox:
        return await lifecycle.create(command)

    @handles(router, commands.SANDBOX_GET, max_workers=max_workers)
    async def get(ref: SandboxRef) -> Sandbox:
        return await lifecycle.get(ref)

    @handles(router, commands.SANDBOX_TERMINATE, max_workers=max_workers)
    async def terminate(ref: SandboxRef) -> Sandbox:
        return await lifecycle.terminate(ref)

    @handles(router, commands.SANDBOX_HOLDS, max_workers=max_workers)
    async def holds(query: RuntimeHoldQuery) -> RuntimeHold:
        return await lifecycle.hold(query)

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

    return router
