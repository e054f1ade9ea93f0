"""Runs one execution to completion in a sandbox's agent and reports it."""

from datetime import UTC, datetime

import structlog

from llmsafespace.contracts import (
    MAX_SYNC_OUTPUT_BYTES,
    ErrorCode,
    ExecutionError,
    ExecutionEvent,
    ExecutionResult,
    ExecutionStatus,
    ExecutionType,
    RunExecution,
    ServiceError,
    Usage,
    subjects,
)
from llmsafespace.runtime import AgentResult, AgentUnavailable
from llmsafespace.servicekit import Bus

from .agents import Agents
from .store import ExecutionStore

log = structlog.get_logger()


def _clip(text: str) -> tuple[str, bool]:
    data = text.encode()
    if len(data) <= MAX_SYNC_OUTPUT_BYTES:
        return text, False
    return data[:MAX_SYNC_OUTPUT_BYTES].decode(errors="ignore"), True


def _status(outcome: AgentResult) -> ExecutionStatus:
    status = ExecutionStatus(outcome.status)
    if status is ExecutionStatus.COMPLETED and outcome.exit_code != 0:
        return ExecutionStatus.FAILED
    return status


class Runner:
    def __init__(self, agents: Agents, store: ExecutionStore, bus: Bus) -> None:
        self._agents = agents
        self._store = store
        self._bus = bus

    async def run(self, command: RunExecution) -> ExecutionResult:
        request = command.request
        structlog.contextvars.bind_contextvars(
            sandbox_id=command.sandbox_id, execution_id=command.execution_id
        )
        _, client = await self._agents.client(command.caller, command.sandbox_id)
        event = ExecutionEvent(
            execution_id=command.execution_id,
            sandbox_id=command.sandbox_id,
            user_id=command.caller.user_id,
            type=request.type,
        )
        await self._bus.event(self._subject(command, "started"), event)
        started_at = datetime.now(UTC)
        try:
            if request.type is ExecutionType.CODE:
                outcome = await client.run_code(request.content, timeout=request.timeout)
            else:
                outcome = await client.run_command(
                    request.content,
                    timeout=request.timeout,
                    env=request.env,
                    cwd=request.working_dir,
                )
        except AgentUnavailable as exc:
            self._agents.forget(command.sandbox_id)
            await self._bus.event(self._subject(command, "failed"), event)
            raise ServiceError(
                ErrorCode.SANDBOX_NOT_RUNNING,
                f"sandbox {command.sandbox_id} stopped answering during the execution",
            ) from exc
        result = self._result(command, started_at, outcome)
        await self._store.record(
            command.caller.user_id,
            request.type,
            result,
            (len(outcome.stdout.encode()), len(outcome.stderr.encode())),
        )
        await self._bus.event(
            self._subject(command, "completed"),
            event.model_copy(
                update={
                    "status": result.status,
                    "exit_code": result.exit_code,
                    "duration_ms": result.duration_ms,
                }
            ),
        )
        log.info("execution_finished", status=result.status, exit_code=result.exit_code)
        return result

    @staticmethod
    def _subject(command: RunExecution, event: str) -> str:
        return subjects.exec_event(command.sandbox_id, command.execution_id, event)

    @staticmethod
    def _result(
        command: RunExecution, started_at: datetime, outcome: AgentResult
    ) -> ExecutionResult:
        stdout, stdout_clipped = _clip(outcome.stdout)
        stderr, stderr_clipped = _clip(outcome.stderr)
        completed_at = datetime.now(UTC)
        return ExecutionResult(
            execution_id=command.execution_id,
            sandbox_id=command.sandbox_id,
            status=_status(outcome),
            exit_code=outcome.exit_code,
            stdout=stdout,
            stderr=stderr,
            output_truncated=stdout_clipped or stderr_clipped,
            result=outcome.result,
            error=ExecutionError.model_validate(outcome.error) if outcome.error else None,
            ended_by=outcome.ended_by,
            started_at=started_at,
            completed_at=completed_at,
            duration_ms=outcome.wall_ms,
            usage=Usage(cpu_ms=outcome.cpu_ms, peak_memory_bytes=outcome.peak_memory_bytes),
        )
