"""Thin subscribers: contract in, runner call, contract out."""

from faststream.nats import NatsRouter

from llmsafespace.contracts import ExecutionResult, RunExecution, subjects

from .runner import Runner


def create_router(runner: Runner, max_workers: int) -> NatsRouter:
    router = NatsRouter()

    @router.subscriber(subjects.EXEC_RUN, queue=subjects.EXEC_QUEUE, max_workers=max_workers)
    async def run(command: RunExecution) -> ExecutionResult:
        return await runner.run(command)

    return router
