"""Thin subscribers: contract in, pool call, contract out."""

from llmsafespace.contracts import (
    ClaimResult,
    ClaimWarmSandbox,
    CreateWarmPool,
    ListWarmPools,
    ReleaseWarmClaim,
    SnapshotPools,
    SnapshotPoolsQuery,
    TemplatePools,
    TemplatePoolsQuery,
    UpdateWarmPool,
    WarmClaimReleased,
    WarmPool,
    WarmPoolList,
    WarmPoolRef,
    commands,
)
from llmsafespace.servicekit import Router, handles

from .pools import Pools


def create_router(pools: Pools, max_workers: int) -> Router:
    router = Router()

    @handles(router, commands.WARMPOOL_CLAIM, max_workers=max_workers)
    async def claim(request: ClaimWarmSandbox) -> ClaimResult:
        return await pools.claim(request)

    @handles(router, commands.WARMPOOL_RELEASE, max_workers=max_workers)
    async def release(request: ReleaseWarmClaim) -> WarmClaimReleased:
        return await pools.release(request)

    @handles(router, commands.WARMPOOL_CREATE, max_workers=max_workers)
    async def create(command: CreateWarmPool) -> WarmPool:
        return await pools.create(command)

    @handles(router, commands.WARMPOOL_GET, max_workers=max_workers)
    async def get(ref: WarmPoolRef) -> WarmPool:
        return await pools.get(ref)

    @handles(router, commands.WARMPOOL_LIST, max_workers=max_workers)
    async def list_pools(query: ListWarmPools) -> WarmPoolList:
        return await pools.list(query)

    @handles(router, commands.WARMPOOL_UPDATE, max_workers=max_workers)
    async def update(command: UpdateWarmPool) -> WarmPool:
        return await pools.update(command)

    @handles(router, commands.WARMPOOL_DELETE, max_workers=max_workers)
    async def delete(ref: WarmPoolRef) -> WarmPool:
        return await pools.delete(ref)

    @handles(router, commands.WARMPOOL_SNAPSHOT_POOLS, max_workers=max_workers)
    async def snapshot_pools(query: SnapshotPoolsQuery) -> SnapshotPools:
        return await pools.snapshot_pools(query)

    @handles(router, commands.WARMPOOL_TEMPLATE_POOLS, max_workers=max_workers)
    async def template_pools(query: TemplatePoolsQuery) -> TemplatePools:
        return await pools.template_pools(query)

    return router
