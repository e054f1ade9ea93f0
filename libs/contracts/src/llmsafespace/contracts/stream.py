"""Streamed executions: what crosses the bus and the WebSocket.

exec-svc publishes every message of one execution on
`llmsafespace.out.<sandbox>.<execution>` (stream `LLMSAFESPACE_OUTPUT`) with one
increasing `seq`: a `started` marker, `output` chunks and `display` results, maybe a
`truncated` marker, and exactly one terminal `ended` marker carrying the result. Any gateway replays
and follows that subject, so a client can resume after a dropped socket.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from .base import Contract, Request
from .caller import Caller
from .execution import (
    EndedBy,
    ExecuteRequest,
    ExecutionError,
    ExecutionResult,
    ExecutionStatus,
    ExecutionType,
    Usage,
)
from .ids import ExecutionId, SandboxId

MAX_IDLE_TIMEOUT_SECONDS = 3600
MAX_STDIN_CHARS = 64 * 1024  # per `stdin` message (fits a bus message with room to spare)


class StreamName(StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"


class StartExecution(Contract):
    """`cmd.exec.start`: accept the execution and run it in the background."""

    caller: Caller
    sandbox_id: SandboxId
    execution_id: ExecutionId
    request: ExecuteRequest
    stdin: bool = Field(default=False, description="Give a command a stdin pipe (`stdin` feeds it)")


class ExecutionAccepted(Contract):
    execution_id: ExecutionId


class CancelExecution(Contract):
    """`cmd.exec.cancel` (broadcast): the exec-svc instance running it stops it."""

    caller: Caller
    sandbox_id: SandboxId
    execution_id: ExecutionId


class ExecutionStdin(Contract):
    """`cmd.exec.stdin` (broadcast): the exec-svc instance running it feeds the command's
    stdin; `eof` closes it after `content`."""

    caller: Caller
    sandbox_id: SandboxId
    execution_id: ExecutionId
    content: str = Field(default="", max_length=MAX_STDIN_CHARS)
    eof: bool = False


class StartedMarker(Contract):
    kind: Literal["started"] = "started"
    seq: int
    timeout: float
    started_at: datetime


class OutputChunk(Contract):
    kind: Literal["output"] = "output"
    seq: int
    stream: StreamName
    content: str
    timestamp: int = Field(description="epoch ms")


class DisplayChunk(Contract):
    """A rich result, in order with the output (`seq` shared)."""

    kind: Literal["display"] = "display"
    seq: int
    data: dict[str, Any]
    is_main_result: bool = False
    truncated: bool = False
    timestamp: int = Field(description="epoch ms")


class TruncatedMarker(Contract):
    """The per-execution output cap was hit: no more output follows, the result does."""

    kind: Literal["truncated"] = "truncated"
    seq: int
    limit_bytes: int


class EndedMarker(Contract):
    kind: Literal["ended"] = "ended"
    seq: int
    result: ExecutionResult


OutputMessage = Annotated[
    StartedMarker | OutputChunk | DisplayChunk | TruncatedMarker | EndedMarker,
    Field(discriminator="kind"),
]


# WebSocket: client → server.


class ClientExecute(Request):
    type: Literal["execute"]
    execution_id: ExecutionId
    mode: ExecutionType
    content: str
    timeout: float = Field(default=30, strict=True)
    env: dict[str, str] | None = None
    working_dir: str | None = None
    idle_timeout: float | None = Field(default=None, strict=True)
    stdin: bool = Field(
        default=False,
        strict=True,
        description="Give the command a stdin pipe fed by `stdin` messages (command mode "
        "only); without it stdin is empty",
    )

    @model_validator(mode="after")
    def _stdin_needs_a_command(self) -> "ClientExecute":
        if self.stdin and self.mode is not ExecutionType.COMMAND:
            raise ValueError("stdin is only available in command mode")
        return self

    def request(self) -> ExecuteRequest:
        return ExecuteRequest(
            type=self.mode,
            content=self.content,
            timeout=self.timeout,
            env=self.env,
            working_dir=self.working_dir,
            idle_timeout=self.idle_timeout,
        )


class ClientCancel(Request):
    type: Literal["cancel"]
    execution_id: ExecutionId


class ClientResume(Request):
    type: Literal["resume"]
    execution_id: ExecutionId
    last_seq: int = Field(default=0, ge=0, strict=True)


class ClientStdin(Request):
    """Input for a running command started with `stdin: true`; `eof` closes its stdin."""

    type: Literal["stdin"]
    execution_id: ExecutionId
    content: str = Field(default="", max_length=MAX_STDIN_CHARS)
    eof: bool = Field(default=False, strict=True)


class ClientPing(Request):
    type: Literal["ping"]
    timestamp: int | None = Field(default=None, strict=True)


ClientMessage = Annotated[
    ClientExecute | ClientCancel | ClientResume | ClientStdin | ClientPing,
    Field(discriminator="type"),
]
CLIENT_MESSAGE_TYPES = ("execute", "cancel", "resume", "stdin", "ping")


# WebSocket: server → client (also the Server-Sent Events of `"stream": true`, each as
# `event: <type>`). Built from the bus messages above by the gateway's relay.


class ServerExecutionStart(Contract):
    type: Literal["execution_start"] = "execution_start"
    execution_id: ExecutionId
    timestamp: int = Field(description="epoch ms the execution started")


class ServerOutput(Contract):
    type: Literal["output"] = "output"
    execution_id: ExecutionId
    seq: int
    stream: StreamName
    content: str
    timestamp: int = Field(description="epoch ms")


class ServerDisplay(Contract):
    """A rich result (a MIME bundle), in order with the output."""

    type: Literal["display"] = "display"
    execution_id: ExecutionId
    seq: int
    data: dict[str, Any]
    is_main_result: bool = False
    truncated: bool = False
    timestamp: int = Field(description="epoch ms")


class _ServerExecutionEnd(Contract):
    """The result without its output (that came as `output` and `display` messages)."""

    execution_id: ExecutionId
    seq: int
    timestamp: int = Field(description="epoch ms the execution ended")
    status: ExecutionStatus
    exit_code: int
    output_truncated: bool = False
    result: str | None = Field(
        default=None, description="text/plain of the main result (the trailing expression)"
    )
    error: ExecutionError | None = None
    ended_by: EndedBy | None = None
    started_at: datetime
    completed_at: datetime
    duration_ms: float
    usage: Usage | None = None


class ServerExecutionComplete(_ServerExecutionEnd):
    """The terminal message of an execution that was not cancelled."""

    type: Literal["execution_complete"] = "execution_complete"


class ServerExecutionCancelled(_ServerExecutionEnd):
    type: Literal["execution_cancelled"] = "execution_cancelled"


class ServerError(Contract):
    """A message refused, or an execution lost (`execution_failed`); with `executionId`
    when it concerns one."""

    type: Literal["error"] = "error"
    code: str
    message: str
    execution_id: str | None = None
    details: dict[str, Any] | None = Field(
        default=None,
        description="what the REST envelope's `details` would say: e.g. `fields` of an "
        "`invalid_request`, `retryAfter` (seconds) of a `rate_limited`",
    )
    timestamp: int = Field(description="epoch ms the error was sent")


class ServerPong(Contract):
    type: Literal["pong"] = "pong"
    timestamp: int


ServerMessage = Annotated[
    ServerExecutionStart
    | ServerOutput
    | ServerDisplay
    | ServerExecutionComplete
    | ServerExecutionCancelled
    | ServerError
    | ServerPong,
    Field(discriminator="type"),
]
