"""Every instance hears sandbox-svc's `EXEC_PREPARE` (a sandbox started running) and
connects to its agent ahead of the first call (see `Agents.prepare`)."""

from llmsafespace.contracts import ResolvedSandbox, commands
from llmsafespace.servicekit import Router, hears

from .agents import Agents


def create_prepare_router(agents: Agents) -> Router:
    router = Router()

    @hears(router, commands.EXEC_PREPARE)  # broadcast: any instance may get the first call
    async def prepare(resolved: ResolvedSandbox) -> None:
        agents.prepare(resolved)

    return router
