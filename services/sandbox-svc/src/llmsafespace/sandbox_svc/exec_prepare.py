"""Telling exec-svc where a sandbox that starts running is reached (`EXEC_PREPARE`), so
that its agent is connected before the sandbox's first call and that call, the first
thing a client does with a new sandbox, needs no resolve."""

import structlog

from llmsafespace.contracts import ResolvedSandbox, Sandbox, ServiceError, commands
from llmsafespace.servicekit import Bus

from .store import Started

log = structlog.get_logger()


async def prepare_exec(bus: Bus, sandbox: Sandbox, started: Started) -> None:
    """Broadcast the agent's endpoint and token of a sandbox now `running`; sent before
    the create's reply, so it is on its way before the client can call. A hint only: a
    first call that comes first resolves as any other, so a failure is logged, never
    raised into the create."""
    resolved = ResolvedSandbox(
        sandbox_id=sandbox.id,
        owner_id=sandbox.owner_id,
        status=sandbox.status,
        endpoint=started.endpoint,
        token=started.token,
    )
    try:
        await bus.broadcast(commands.EXEC_PREPARE, resolved)
    except ServiceError as exc:
        log.warning("exec_prepare_failed", code=exc.code, error=exc.message)
