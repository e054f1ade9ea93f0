"""Thin subscribers: contract in, pool call, contract out."""

from faststream.nats import NatsRouter

from llmsafespace.contracts import (
    ClaimResult,
    ClaimWarmSandbox,
    CreateWarmPool,
    ListWarmPools,
    TemplatePools,
    TemplatePoolsQuery,
    UpdateWarmPool,
    WarmPool,
    WarmPoolList,
    WarmPoolRef,
    subjects,
)

from .pools import Pools


def create_router(pools: Pools, max_workers: int) -> NatsRouter:
    router = NatsRouter()
    queue = subjects.WARMPOOL_QUEUE

    @router.subscriber(subjects.WARMPOOL_CLAIM, queue=queue, max_workers=max_workers)
    async def claim(request: ClaimWarmSandbox) -> ClaimResult:
        return await pools.claim(request)

    @router.subscriber(subjects.WARMPOOL_CREATE, queue=queue, max_workers=max_workers)
    async def create(command: CreateWarmPool) -> WarmPool:
        return await pools.create(command)

    @router.subscriber(subjects.WARMPOOL_GET, queue=queue, max_workers=max_workers)
    async def get(ref: WarmPoolRef) -> WarmPool:
        return await pools.get(ref)

    @router.subscriber(subjects.WARMPOOL_LIST, queue=queue, max_workers=max_workers)
    async def list_pools(query: ListWarmPools) -> WarmPoolList:
        return await pools.list(query)

    @router.subscriber(subjects.WARMPOOL_UPDATE, queue=queue, max_workers=max_workers)
    async def update(command: UpdateWarmPool) -> WarmPool:
        return await pools.update(command)

    @router.subscriber(subjects.WARMPOOL_DELETE, queue=queue, max_workers=max_workers)
    async def delete(ref: WarmPoolRef) -> WarmPool:
        return await pools.delete(ref)

    @router.subscriber(subjects.WARMPOOL_TEMPLATE_POOLS, queue=queue, max_workers=max_workers)
    async def template_pools(query: TemplatePoolsQuery) -> TemplatePools:
        return await pools.template_pools(query)

    return router
