"""How one execution ended, and the result frame that reports it."""

from __future__ import annotations

from collections.abc import Callable

from .protocol import Frame

Sink = Callable[[str, str], None]
"""Receives output as it arrives: (stream, text)."""

DisplaySink = Callable[[Frame], None]
"""Receives rich results (MIME bundles) as the code displays them, in order with output."""


def discard_display(bundle: Frame) -> None:
    """Drop results nobody asked for."""


TIMEOUT_EXIT_CODE = 124
CANCELLED_EXIT_CODE = 130


class Usage:
    """Resources one execution used."""

    __slots__ = ("cpu_ms", "peak_memory_bytes", "wall_ms")

    def __init__(self, wall_ms: float, cpu_ms: float, peak_memory_bytes: int) -> None:
        self.wall_ms = wall_ms
        self.cpu_ms = cpu_ms
        self.peak_memory_bytes = peak_memory_bytes


class Outcome:
    """The end of one execution."""

    __slots__ = ("ended_by", "error", "exit_code", "result", "status", "usage")

    def __init__(
        self,
        status: str,
        exit_code: int,
        ended_by: str,
        usage: Usage,
        result: str | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.exit_code = exit_code
        self.ended_by = ended_by
        self.usage = usage
        self.result = result
        self.error = error

    def frame(self, request_id: object) -> Frame:
        """The ``result`` reply for request ``request_id``."""
        return {
            "id": request_id,
            "type": "result",
            "status": self.status,
            "exitCode": self.exit_code,
            "result": self.result,
            "error": self.error,
            "endedBy": self.ended_by,
            "usage": {
                "wallMs": self.usage.wall_ms,
                "cpuMs": self.usage.cpu_ms,
                "peakMemoryBytes": self.usage.peak_memory_bytes,
            },
        }


def stopped(reason: str, usage: Usage) -> Outcome:
    """The outcome of an execution stopped by ``reason`` ("timeout" or "cancelled")."""
    code = TIMEOUT_EXIT_CODE if reason == "timeout" else CANCELLED_EXIT_CODE
    return Outcome(status=reason, exit_code=code, ended_by=reason, usage=usage)
