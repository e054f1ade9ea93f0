"""Executions: the request a client sends and the result it gets back."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from .base import Contract, Request
from .caller import Caller
from .ids import ExecutionId, SandboxId

MAX_CODE_BYTES = 512 * 1024
_ENV_NAME_FORBIDDEN = ("=", "\x00")
MAX_TIMEOUT_SECONDS = 3600
MAX_SYNC_OUTPUT_BYTES = 256 * 1024  # per stream in a synchronous result; stream for more


class ExecutionType(StrEnum):
    CODE = "code"
    COMMAND = "command"


class EndedBy(StrEnum):
    """Why an execution ended: its process exited, was killed by a signal or the OOM
    killer, ran past its timeout, was cancelled, sat idle past its input deadline, or
    could not run at all (`error`)."""

    EXIT = "exit"
    SIGNAL = "signal"
    OOM = "oom"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    IDLE = "idle"
    ERROR = "error"


class ExecutionStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    ERROR = "error"


class ExecuteRequest(Request):
    """`POST /sandboxes/{id}/execute` body."""

    type: ExecutionType
    content: str = Field(min_length=1)
    timeout: float = Field(default=30, gt=0, le=MAX_TIMEOUT_SECONDS, strict=True)
    env: dict[str, str] | None = None
    working_dir: str | None = Field(default=None, min_length=1, max_length=4096)
    idle_timeout: float | None = Field(
        default=None,
        gt=0,
        strict=True,
        le=MAX_TIMEOUT_SECONDS,
        description="End the execution (status timeout) after this many seconds without output",
    )
    stream: bool = Field(
        default=False,
        strict=True,
        description="Answer with Server-Sent Events as the execution runs",
    )

    @field_validator("content")
    @classmethod
    def _content_size(cls, value: str) -> str:
        if len(value.encode()) > MAX_CODE_BYTES:
            raise ValueError(f"content must be at most {MAX_CODE_BYTES} bytes")
        if not value.strip():
            raise ValueError("content must not be blank")
        if "\x00" in value:
            raise ValueError("content cannot contain NUL characters")
        return value

    @field_validator("working_dir")
    @classmethod
    def _working_dir_text(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("workingDir cannot contain NUL characters")
        return value

    @field_validator("env")
    @classmethod
    def _env_entries(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, item in (value or {}).items():
            if not name or any(char in name for char in _ENV_NAME_FORBIDDEN):
                raise ValueError("env names must be non-empty, without '=' or NUL")
            if "\x00" in item:
                raise ValueError("env values cannot contain NUL characters")
        return value


class ExecutionError(Contract):
    """A Python exception raised by user code."""

    name: str
    value: str
    traceback: str


class Usage(Contract):
    """What one execution consumed."""

    cpu_ms: float
    peak_memory_bytes: int


class DisplayResult(Contract):
    """A rich result: a MIME bundle, as IPython's display protocol makes it (see the agent's
    `display` module). `text/plain` is always there; binary types (`image/png`,
    `image/jpeg`) are base64; `application/json` is JSON itself."""

    data: dict[str, Any] = Field(description="MIME type → content")
    is_main_result: bool = Field(
        default=False, description="The value of the code's trailing expression"
    )
    truncated: bool = Field(
        default=False,
        description="Past the size cap: the largest types were dropped, text/plain shortened",
    )


class ExecutionResult(Contract):
    execution_id: ExecutionId
    sandbox_id: SandboxId
    status: ExecutionStatus
    exit_code: int
    stdout: str
    stderr: str
    output_truncated: bool = False
    result: str | None = Field(
        default=None, description="text/plain of the main result (the trailing expression)"
    )
    results: list[DisplayResult] = Field(
        default_factory=list,
        description="Rich results (code only), in display order: `display(...)`, figures,"
        " the trailing expression (`isMainResult`)",
    )
    error: ExecutionError | None = None
    ended_by: EndedBy | None = Field(default=None, description="Why it ended")
    started_at: datetime
    completed_at: datetime
    duration_ms: float
    usage: Usage | None = None


class RunExecution(Contract):
    """`cmd.exec.run`: run to completion and reply with the whole result."""

    caller: Caller
    sandbox_id: SandboxId
    execution_id: ExecutionId
    request: ExecuteRequest


class ExecutionEvent(Contract):
    """`evt.exec.<sandbox>.<execution>.<event>`: who ran what, and how it ended."""

    execution_id: ExecutionId
    sandbox_id: SandboxId
    user_id: str
    type: ExecutionType
    status: ExecutionStatus | None = None
    exit_code: int | None = None
    duration_ms: float | None = None
    started_at: datetime | None = Field(
        default=None,
        description="When it started (the `started` event of a short execution is published"
        " with its terminal one)",
    )
