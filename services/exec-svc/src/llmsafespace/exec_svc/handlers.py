"""Thin subscribers: contract in, runner call, contract out."""

from faststream.nats import NatsRouter

from llmsafespace.contracts import (
    CancelExecution,
    ExecutionAccepted,
    ExecutionResult,
    RunExecution,
    StartExecution,
    subjects,
)

from .runner import Runner


def create_router(runner: Runner, max_workers: int) -> NatsRouter:
    router = NatsRouter()
    queue = subjects.EXEC_QUEUE

    @router.subscriber(subjects.EXEC_RUN, queue=queue, max_workers=max_workers)
    async def run(command: RunExecution) -> ExecutionResult:
        return await runner.run(command)

    @router.subscriber(subjects.EXEC_START, queue=queue, max_workers=max_workers)
    async def start(command: StartExecution) -> ExecutionAccepted:
        return await runner.start(command)

    @router.subscriber(subjects.EXEC_CANCEL)  # broadcast: every instance hears it
    async def cancel(command: CancelExecution) -> None:
        runner.cancel(command)

    return router
