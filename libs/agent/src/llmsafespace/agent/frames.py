"""The agent's frame schema, written once for both ends: the agent and its client
(``llmsafespace.runtime.agent_client``) name ops, reply types and the result from here.

A request is ``{"id", "op", ...}`` (``hello`` and the frames fed to a running request by
its ``target`` excepted); every reply carries the request's ``id`` and a ``type``. An
execution (``run_code``, ``run_command``, ``open_terminal``) streams ``output`` and
``display`` frames, then ends with the ``result`` frame of its ``Outcome``.

Stdlib only and without ``typing`` at run time, as the rest of the agent.
"""

from __future__ import annotations

from .protocol import Frame


class Op:
    """The ``op`` of a frame the client sends."""

    HELLO = "hello"  # the first frame: {"op", "token"}; answered {"ok": true}
    PING = "ping"
    RUN_CODE = "run_code"
    RUN_COMMAND = "run_command"
    OPEN_TERMINAL = "open_terminal"
    SET_ENV = "set_env"
    CANCEL = "cancel"
    LIST_FILES = "list_files"
    DELETE_FILE = "delete_file"
    WRITE_FILE = "write_file"
    READ_FILE = "read_file"
    # Fed in order to the running request named by ``target``, not requests of their own:
    DATA = "data"  # a chunk of a ``write_file`` (the body), or {"credit"}, {"abort"}
    STDIN = "stdin"  # {"data", "eof"}
    RESIZE = "resize"  # {"cols", "rows"}


class Reply:
    """The ``type`` of a frame the agent sends."""

    OUTPUT = "output"  # {"stream": "stdout" | "stderr", "data": text}
    DISPLAY = "display"  # a rich result: DISPLAY_KEYS
    RESULT = "result"  # the end of a request (of an execution: ``Outcome.frame``)
    PONG = "pong"
    ACK = "ack"
    ERROR = "error"  # {"message", "code"?}: the request was refused or failed
    # Of a transfer (``write_file``, ``read_file``), before its result:
    READY = "ready"  # {"credit"}: the upload may send that many chunks
    CREDIT = "credit"  # {"credit"}: and that many more
    INFO = "info"  # {"info", "etag", "length"}: what the download sends
    DATA = "data"  # a chunk of the download (the body)


TERMINAL = frozenset({Reply.RESULT, Reply.PONG, Reply.ACK, Reply.ERROR})
"""Reply types that end their request."""

DISPLAY_KEYS = ("data", "isMainResult", "truncated")
"""A rich result: its MIME bundle, whether it is the cell's trailing value, whether it
was cut to size."""

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
    """The end of one execution, and the ``result`` frame that carries it."""

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
            "type": Reply.RESULT,
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

    @classmethod
    def from_frame(cls, frame: Frame) -> Outcome:
        """Read a ``result`` frame back (the client's side); KeyError, TypeError or
        ValueError if it lacks a field or has one of the wrong kind."""
        usage = frame.get("usage") or {}
        return cls(
            status=str(frame["status"]),
            exit_code=int(frame["exitCode"]),
            ended_by=str(frame["endedBy"]),
            usage=Usage(
                float(usage.get("wallMs", 0.0)),
                float(usage.get("cpuMs", 0.0)),
                int(usage.get("peakMemoryBytes", 0)),
            ),
            result=frame.get("result"),
            error=frame.get("error"),
        )
