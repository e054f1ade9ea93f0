"""What a streamed execution yields: small typed events, in the order they happened."""

from dataclasses import dataclass
from typing import Any

from .models import ExecutionResult, Result


@dataclass(frozen=True)
class Stdout:
    """A chunk the execution wrote to standard output."""

    text: str
    seq: int | None = None
    timestamp: float | None = None


@dataclass(frozen=True)
class Stderr:
    """A chunk the execution wrote to standard error."""

    text: str
    seq: int | None = None
    timestamp: float | None = None


@dataclass(frozen=True)
class Display:
    """A rich result (an image, a table, the trailing expression's value), in order with
    the output; it is also in the final result's `results`."""

    result: Result
    seq: int | None = None
    timestamp: float | None = None


@dataclass(frozen=True)
class Complete:
    """The execution ended (completed, failed, timed out or was cancelled); `result`
    carries its status, exit code, usage and all output seen on the stream."""

    result: ExecutionResult


@dataclass(frozen=True)
class Error:
    """The server could not run (or keep running) the execution."""

    code: str
    message: str
    execution_id: str | None = None
    details: dict[str, Any] | None = None  # as an error envelope's: e.g. `retryAfter`


Event = Stdout | Stderr | Display | Complete | Error
"""Any event of a streamed execution; `Complete` or `Error` is always the last."""
