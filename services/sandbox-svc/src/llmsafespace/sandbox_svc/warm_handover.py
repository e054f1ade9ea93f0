"""sandbox-svc's side of the warm-claim handover (the protocol is described once, in
`ClaimWarmSandbox`'s docstring): ask for a warm runtime for a `creating` row, adopt it,
and release a claim the sandbox will never run on."""

import structlog

from llmsafespace.contracts import (
    ClaimResult,
    ClaimWarmSandbox,
    CreateSandbox,
    ReleaseWarmClaim,
    Sandbox,
    SandboxEventName,
    ServiceError,
    commands,
    subjects,
)
from llmsafespace.servicekit import Bus

from .exec_prepare import prepare_exec
from .refusals import ended_while_created
from .store import SandboxStore, Started

log = structlog.get_logger()


class WarmHandover:
    def __init__(self, store: SandboxStore, bus: Bus, claim_timeout: float = 2.0) -> None:
        self._store = store
        self._bus = bus
        self._claim_timeout = claim_timeout

    async def claim(self, sandbox_id: str, command: CreateSandbox) -> Sandbox | None:
        """Steps 2-4 of the warm handover (see `ClaimWarmSandbox`): the sandbox running on
        a claimed warm runtime, or None to create it cold. A claim whose outcome is not
        known (no reply) stays unsettled: `release_claims` releases it once the row is
        past `creating`, whatever the claim did meanwhile."""
        claim = await self._ask(sandbox_id, command)
        if claim is None:
            return None
        if not (claim.hit and claim.runtime_id and claim.endpoint and claim.token):
            await self._store.settle_claim(sandbox_id)  # a miss: nothing was assigned
            return None
        adopted = Started(claim.runtime_id, claim.endpoint, claim.token, from_warm_pool=True)
        sandbox = await self._store.mark_running(sandbox_id, adopted)
        if sandbox is None:  # ended meanwhile (deleted, expired): it never runs on it
            await self._release(sandbox_id)
            raise ended_while_created(sandbox_id)
        await prepare_exec(self._bus, sandbox, adopted)
        await self._bus.event(subjects.sandbox_event(sandbox_id, SandboxEventName.RUNNING), sandbox)
        return sandbox

    async def _release(self, sandbox_id: str) -> None:
        """Step 4: warmpool-svc releases what the claim assigned; the claim is settled once
        it says so (else `release_claims` asks again later)."""
        try:
            await self._bus.request(
                commands.WARMPOOL_RELEASE,
                ReleaseWarmClaim(sandbox_id=sandbox_id),
                timeout=self._claim_timeout,
            )
        except ServiceError as exc:
            log.warning("warm_release_failed", code=exc.code, error=exc.message)
            return
        await self._store.settle_claim(sandbox_id)

    async def release_claims(self) -> None:
        """Release the warm claims of sandboxes past `creating` that never settled theirs
        (no reply came; or their creator died and the reaper failed the row)."""
        for sandbox_id in await self._store.unsettled_claims():
            await self._release(sandbox_id)

    async def _ask(self, sandbox_id: str, command: CreateSandbox) -> ClaimResult | None:
        """warmpool-svc's answer; None when there was none (it may have assigned one)."""
        request = command.request
        claim = ClaimWarmSandbox(
            caller=command.caller,
            sandbox_id=sandbox_id,
            runtime=request.runtime,
            security_level=request.security_level,
            resources=request.resources,
            env=request.env,
            template=request.template,
            snapshot=request.snapshot,
        )
        try:
            return await self._bus.request(
                commands.WARMPOOL_CLAIM, claim, timeout=self._claim_timeout
            )
        except ServiceError as exc:
            log.warning("warm_claim_failed", code=exc.code, error=exc.message)
            return None
