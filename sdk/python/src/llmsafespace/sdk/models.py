"""What the SDK hands back. Wire parts (status enums, usage, errors, the sandbox) are the
contracts' own models; these add what a caller wants on top."""

from datetime import datetime
from typing import Any

from pydantic import ConfigDict
from pydantic.alias_generators import to_camel

from llmsafespace.contracts import (
    Contract,
    ExecutionError,
    ExecutionStatus,
    Resources,
    Sandbox,
    SandboxStatus,
    Usage,
)

SandboxInfo = Sandbox
"""A sandbox as its owner sees it (`llmsafespace.contracts.Sandbox`)."""


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


class Pagination(Contract):
    limit: int
    offset: int
    total: int


class SandboxPage(Contract):
    """One page of `GET /sandboxes`."""

    sandboxes: list[Sandbox]
    pagination: Pagination


class SandboxStatusInfo(Contract):
    """`GET /sandboxes/{id}/status`: the lifecycle status, plus whatever detail the server
    adds (kept in `model_extra`)."""

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    status: SandboxStatus
    status_reason: str | None = None
    runtime_alive: bool | None = None
    uptime_seconds: float | None = None

    @property
    def details(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class WarmPoolSpecInfo(Contract):
    """What a pool keeps ready (as `POST /warmpools` took it)."""

    model_config = ConfigDict(extra="allow")

    runtime: str = "python:3.11"
    min_size: int = 0
    max_size: int = 0
    security_level: str | None = None
    ttl: int | None = None
    resources: Resources | None = None


class WarmPoolStatus(Contract):
    """How full a pool is: `available_pods` ready now, `desired_pods` wanted."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    available_pods: int = 0
    assigned_pods: int = 0
    pending_pods: int = 0
    desired_pods: int = 0
    conditions: list[dict[str, Any]] = []


class WarmPoolInfo(Contract):
    """A warm pool as its owner sees it: `spec` (what it keeps) and `status` (how full)."""

    model_config = ConfigDict(extra="allow")

    name: str
    owner_id: str | None = None
    spec: WarmPoolSpecInfo
    status: WarmPoolStatus = WarmPoolStatus()
    created_at: datetime | None = None
    updated_at: datetime | None = None


def resources_body(resources: Resources | dict[str, Any]) -> dict[str, Any]:
    """`resources` as the API wants it (camelCase), from the model or a plain dict; the
    server validates it."""
    fields = resources.wire() if isinstance(resources, Resources) else resources
    return {to_camel(key): value for key, value in fields.items()}
