"""What the SDK hands back: the contracts' own models, re-exported under the SDK's names,
and the execution result with what a caller wants on top."""

from datetime import datetime
from typing import Any

from pydantic.alias_generators import to_camel

from llmsafespace.contracts import (
    Contract,
    ExecutionError,
    ExecutionStatus,
    Pagination,
    Resources,
    Sandbox,
    SandboxPage,
    SandboxStatusReport,
    Snapshot,
    Usage,
    WarmPool,
    WarmPoolStatus,
)

__all__ = [
    "ExecutionResult",
    "Pagination",
    "SandboxInfo",
    "SandboxPage",
    "SandboxStatusInfo",
    "SnapshotInfo",
    "WarmPoolInfo",
    "WarmPoolStatus",
    "resources_body",
]

SandboxInfo = Sandbox
"""A sandbox as its owner sees it (`llmsafespace.contracts.Sandbox`)."""

SnapshotInfo = Snapshot
"""A snapshot of a sandbox's workspace, env, metadata and runtime (not its memory)."""


class ExecutionResult(Contract):
    """The outcome of one `run_code` / `run_command` (or of a finished stream)."""

    execution_id: str
    status: ExecutionStatus
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    error: ExecutionError | None = None
    output_truncated: bool = False
    started_at: datetime | None = None
    completed_at: datetime | None = None
    duration_ms: float = 0.0
    usage: Usage | None = None

    @property
    def success(self) -> bool:
        """Completed with exit code 0 and no exception."""
        return self.status is ExecutionStatus.COMPLETED and self.exit_code == 0

    @property
    def duration(self) -> float:
        """Wall-clock duration in seconds."""
        return self.duration_ms / 1000


SandboxStatusInfo = SandboxStatusReport
"""`GET /sandboxes/{id}/status` (`llmsafespace.contracts.SandboxStatusReport`)."""

WarmPoolInfo = WarmPool
"""A warm pool as its owner sees it (`llmsafespace.contracts.WarmPool`)."""


def resources_body(resources: Resources | dict[str, Any]) -> dict[str, Any]:
    """`resources` as the API wants it (camelCase), from the model or a plain dict; the
    server validates it."""
    fields = resources.wire() if isinstance(resources, Resources) else resources
    return {to_camel(key): value for key, value in fields.items()}
