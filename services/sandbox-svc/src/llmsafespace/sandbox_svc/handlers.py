"""Thin subscribers: contract in, lifecycle call, contract out."""

from faststream.nats import NatsRouter

from llmsafespace.contracts import CreateSandbox, ResolvedSandbox, Sandbox, SandboxRef, subjects

from .lifecycle import Lifecycle


def create_router(lifecycle: Lifecycle, max_workers: int) -> NatsRouter:
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

    @router.subscriber(subjects.SANDBOX_RESOLVE, queue=queue, max_workers=max_workers)
    async def resolve(ref: SandboxRef) -> ResolvedSandbox:
        return await lifecycle.resolve(ref)

    return router
