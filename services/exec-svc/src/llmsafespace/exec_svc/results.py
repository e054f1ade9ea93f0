"""What an agent's outcome becomes: the `ExecutionResult` a caller gets.

The agent's status is kept except where the service knows more: a run cancelled because
it sat idle past its input deadline is a timeout (`endedBy: idle`), a command that ran
to its end with a non-zero exit code failed. Output and rich results are clipped to what
one synchronous reply may carry.
"""

import json
from datetime import UTC, datetime
from typing import Any, Protocol

from llmsafespace.contracts import (
    MAX_SYNC_OUTPUT_BYTES,
    DisplayResult,
    EndedBy,
    ExecutionError,
    ExecutionResult,
    ExecutionStatus,
    RunExecution,
    StartExecution,
    Usage,
)
from llmsafespace.runtime import TIMEOUT_EXIT_CODE, AgentResult


def execution_result(
    command: RunExecution | StartExecution,
    started_at: datetime,
    outcome: AgentResult,
    idle_expired: bool,
) -> ExecutionResult:
    stdout, stdout_clipped = _clip(outcome.stdout)
    stderr, stderr_clipped = _clip(outcome.stderr)
    results, results_clipped = _clip_results(outcome.results)
    status = ExecutionStatus(outcome.status)
    exit_code, ended_by = outcome.exit_code, EndedBy(outcome.ended_by)
    if status is ExecutionStatus.CANCELLED and idle_expired:
        status, exit_code, ended_by = ExecutionStatus.TIMEOUT, TIMEOUT_EXIT_CODE, EndedBy.IDLE
    elif status is ExecutionStatus.COMPLETED and exit_code != 0:
        status = ExecutionStatus.FAILED
    return ExecutionResult(
        execution_id=command.execution_id,
        sandbox_id=command.sandbox_id,
        status=status,
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr,
        output_truncated=stdout_clipped or stderr_clipped or results_clipped,
        result=outcome.result,
        results=results,
        error=ExecutionError.model_validate(outcome.error) if outcome.error else None,
        ended_by=ended_by,
        started_at=started_at,
        completed_at=datetime.now(UTC),
        duration_ms=outcome.wall_ms,
        usage=Usage(cpu_ms=outcome.cpu_ms, peak_memory_bytes=outcome.peak_memory_bytes),
    )


class Identified(Protocol):
    """What names an execution: a command to start one, or its `started` event."""

    @property
    def execution_id(self) -> str: ...

    @property
    def sandbox_id(self) -> str: ...


def bare_result(
    command: Identified,
    error: ExecutionError | None,
    *,
    exit_code: int = -1,
    started_at: datetime | None = None,
) -> ExecutionResult:
    """A result without the agent's outcome or output: an execution that could not run or
    stopped short (`error` says why), or a build's end (its steps' output went out as
    chunks; `error` is the failed step). Without `started_at` it never started: it starts
    and ends now."""
    completed_at = datetime.now(UTC)
    started_at = started_at or completed_at
    return ExecutionResult(
        execution_id=command.execution_id,
        sandbox_id=command.sandbox_id,
        status=ExecutionStatus.COMPLETED if error is None else ExecutionStatus.ERROR,
        exit_code=exit_code,
        stdout="",
        stderr="",
        error=error,
        ended_by=EndedBy.EXIT if error is None else EndedBy.ERROR,
        started_at=started_at,
        completed_at=completed_at,
        duration_ms=(completed_at - started_at).total_seconds() * 1000,
    )


def _clip(text: str) -> tuple[str, bool]:
    data = text.encode()
    if len(data) <= MAX_SYNC_OUTPUT_BYTES:
        return text, False
    return data[:MAX_SYNC_OUTPUT_BYTES].decode(errors="ignore"), True


def _clip_results(results: tuple[dict[str, Any], ...]) -> tuple[list[DisplayResult], bool]:
    """A synchronous result's rich results within MAX_SYNC_OUTPUT_BYTES together: one that
    does not fit keeps only its text/plain (marked truncated) if that fits, else is left out
    (then the second value is True)."""
    kept: list[DisplayResult] = []
    room, dropped = MAX_SYNC_OUTPUT_BYTES, False
    for bundle in results:
        result = DisplayResult.model_validate(bundle)
        size = len(json.dumps(result.data).encode())
        if size > room:
            text = {"text/plain": result.data.get("text/plain", "")}
            result = result.model_copy(update={"data": text, "truncated": True})
            size = len(json.dumps(text).encode())
        if size > room:
            dropped = True
            continue
        room -= size
        kept.append(result)
    return kept, dropped
