"""Every instance hears sandbox-svc's `EXEC_PREPARE` (a sandbox started running) and
connects to its agent ahead of the first call (see `Agents.prepare`)."""

from faststream.nats import NatsRouter

from llmsafespace.contracts import ResolvedSandbox, commands
from llmsafespace.servicekit import hears

from .agents import Agents


def create_prepare_router(agents: Agents) -> NatsRouter:
    router = NatsRouter()

    @hears(router, commands.EXEC_PREPARE)  # broadcast: any instance may get the first call
    async def prepare(resolved: ResolvedSandbox) -> None:
        agents.prepare(resolved)

    return router
