"""Thin subscribers: contract in, pool call, contract out."""

from faststream.nats import NatsRouter

from llmsafespace.contracts import ClaimResult, ClaimWarmSandbox, subjects

from .pools import Pools


def create_router(pools: Pools) -> NatsRouter:
    router = NatsRouter()

    @router.subscriber(subjects.WARMPOOL_CLAIM, queue=subjects.WARMPOOL_QUEUE, max_workers=16)
    async def claim(request: ClaimWarmSandbox) -> ClaimResult:
        return await pools.claim(request)

    return router
