"""What the agent's outcome becomes for the caller: status, exit code, why it ended."""

from datetime import UTC, datetime
from typing import Any

import pytest

from llmsafespace.contracts import (
    MAX_SYNC_OUTPUT_BYTES,
    Caller,
    EndedBy,
    ExecuteRequest,
    ExecutionError,
    ExecutionStatus,
    Role,
    RunExecution,
    StartExecution,
)
from llmsafespace.exec_svc.results import bare_result, execution_result
from llmsafespace.runtime import TIMEOUT_EXIT_CODE, AgentResult

COMMAND = RunExecution(
    caller=Caller(user_id="usr-aaaaaaaaaaaa", role=Role.USER),
    sandbox_id="sb-aaaaaaaaaaaa",
    execution_id="exec-1",
    request=ExecuteRequest(type="command", content="true"),
)
STARTED = datetime(2026, 1, 1, tzinfo=UTC)


def _outcome(**fields: Any) -> AgentResult:
    defaults: dict[str, Any] = {
        "status": "completed",
        "exit_code": 0,
        "stdout": "",
        "stderr": "",
        "result": None,
        "error": None,
        "ended_by": "exit",
        "wall_ms": 12.5,
        "cpu_ms": 3.0,
        "peak_memory_bytes": 1024,
    }
    return AgentResult(**(defaults | fields))


@pytest.mark.parametrize(
    ("agent", "idle_expired", "expected"),
    [
        ({}, False, (ExecutionStatus.COMPLETED, 0, EndedBy.EXIT)),
        ({"exit_code": 3}, False, (ExecutionStatus.FAILED, 3, EndedBy.EXIT)),
        (
            {"status": "failed", "exit_code": 137, "ended_by": "oom"},
            False,
            (ExecutionStatus.FAILED, 137, EndedBy.OOM),
        ),
        (
            {"status": "timeout", "exit_code": TIMEOUT_EXIT_CODE, "ended_by": "timeout"},
            False,
            (ExecutionStatus.TIMEOUT, TIMEOUT_EXIT_CODE, EndedBy.TIMEOUT),
        ),
        (
            {"status": "cancelled", "exit_code": 130, "ended_by": "cancelled"},
            False,
            (ExecutionStatus.CANCELLED, 130, EndedBy.CANCELLED),
        ),
        (
            {"status": "cancelled", "exit_code": 130, "ended_by": "cancelled"},
            True,
            (ExecutionStatus.TIMEOUT, TIMEOUT_EXIT_CODE, EndedBy.IDLE),
        ),
    ],
    ids=["exit-0", "exit-3", "oom", "timeout", "cancelled", "idle"],
)
def test_the_agents_outcome_maps_to_status_exit_code_and_reason(
    agent: dict[str, Any],
    idle_expired: bool,
    expected: tuple[ExecutionStatus, int, EndedBy],
) -> None:
    result = execution_result(COMMAND, STARTED, _outcome(**agent), idle_expired)
    assert (result.status, result.exit_code, result.ended_by) == expected
    assert (result.duration_ms, result.usage.cpu_ms) == (12.5, 3.0)


def test_an_unknown_reason_from_the_agent_is_refused() -> None:
    with pytest.raises(ValueError, match="bogus"):
        execution_result(COMMAND, STARTED, _outcome(ended_by="bogus"), False)


def test_output_past_the_synchronous_limit_is_clipped_and_flagged() -> None:
    flood = "x" * (MAX_SYNC_OUTPUT_BYTES + 10)
    result = execution_result(COMMAND, STARTED, _outcome(stdout=flood, stderr="e"), False)
    assert len(result.stdout.encode()) == MAX_SYNC_OUTPUT_BYTES
    assert result.output_truncated
    assert result.stderr == "e"


def test_an_execution_that_could_not_run_is_an_error_with_its_message() -> None:
    command = StartExecution.model_validate(COMMAND.model_dump())
    error = ExecutionError(name="ExecutionFailed", value="sandbox is terminated", traceback="")
    result = bare_result(command, error)
    assert (result.status, result.exit_code, result.ended_by) == (
        ExecutionStatus.ERROR,
        -1,
        EndedBy.ERROR,
    )
    assert result.error == error
    assert result.started_at == result.completed_at
    assert result.duration_ms == 0


def test_a_result_without_an_error_completed_by_exiting() -> None:
    command = StartExecution.model_validate(COMMAND.model_dump())
    result = bare_result(command, None, exit_code=0, started_at=STARTED)
    assert (result.status, result.exit_code, result.ended_by) == (
        ExecutionStatus.COMPLETED,
        0,
        EndedBy.EXIT,
    )
    assert result.started_at == STARTED
    assert result.duration_ms > 0
