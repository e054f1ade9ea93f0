"""Warm pools. No pool can be defined yet, so every claim is a miss and the caller
cold-creates; pool definitions, replenishing and the atomic claim come next."""

import structlog

from llmsafespace.contracts import ClaimResult, ClaimWarmSandbox

log = structlog.get_logger()


class Pools:
    async def claim(self, request: ClaimWarmSandbox) -> ClaimResult:
        log.debug("warm_claim_miss", runtime=request.runtime)
        return ClaimResult(hit=False)
