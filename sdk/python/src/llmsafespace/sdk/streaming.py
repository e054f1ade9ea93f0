"""Streamed executions over `GET /sandboxes/{id}/stream` (WebSocket), resumed after drops."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from typing import Any, Literal, Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from llmsafespace.contracts import ExecutionStatus, new_execution_id
from llmsafespace.contracts.stream import MAX_STDIN_CHARS

from .config import ClientConfig
from .errors import (
    APIConnectionError,
    LLMSafeSpaceError,
    ServiceUnavailableError,
    StreamUnavailableError,
    error_from_envelope,
)
from .events import Complete, Display, Error, Event, Stderr, Stdout
from .models import ExecutionResult, Result

Mode = Literal["code", "command"]
OutputCallback = Callable[[str], object]
CANCELLED_EXIT_CODE = -1
ACK_SECONDS = 2.0  # how long a one-off control message waits for its answer
_MISSING_ROUTE = {403, 404, 405}  # what a server without the endpoint answers a handshake


def stream_url(config: ClientConfig, sandbox_id: str) -> str:
    return f"{config.websocket_url}/sandboxes/{sandbox_id}/stream"


async def open_stream(config: ClientConfig, sandbox_id: str) -> ClientConnection:
    """A connected socket, or the mapped error: an envelope in a refused handshake picks
    the exception; a bare 403/404/405 means the server has no stream endpoint."""
    return await open_socket(config, stream_url(config, sandbox_id))


async def open_socket(config: ClientConfig, url: str) -> ClientConnection:
    """`open_stream` for any of the API's WebSocket endpoints."""
    try:
        return await connect(
            url,
            additional_headers={"Authorization": f"Bearer {config.api_key}"},
            open_timeout=config.request_timeout,
            max_size=None,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        try:
            body = json.loads(exc.response.body or b"")
        except ValueError:
            body = None
        if not (isinstance(body, dict) and "error" in body) and status in _MISSING_ROUTE:
            raise StreamUnavailableError(
                f"the server has no stream endpoint (HTTP {status})", status=status
            ) from exc
        raise error_from_envelope(body, status) from exc
    except (OSError, InvalidURI) as exc:
        raise APIConnectionError(
            f"cannot reach the API at {config.api_url}: {exc}", code="service_unavailable"
        ) from exc


class AsyncExecutionStream:
    """One streamed execution. Iterate it for `Stdout`/`Stderr` events and a final
    `Complete` (or `Error`); or `await wait()` for the `ExecutionResult`.

    The execution id is chosen here, so `execution_id` is known before anything runs. If
    the socket drops, the stream reconnects and sends `resume` with the last `seq` it saw;
    chunks already seen are not repeated."""

    def __init__(
        self,
        config: ClientConfig,
        sandbox_id: str,
        mode: Mode,
        content: str,
        *,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        max_reconnects: int = 5,
        stdin: bool = False,
    ) -> None:
        self.execution_id = new_execution_id()
        self.sandbox_id = sandbox_id
        self.result: ExecutionResult | None = None
        self._config = config
        self._mode = mode
        self._content = content
        self._timeout = timeout
        self._env = env
        self._cwd = cwd
        self._on_stdout = on_stdout
        self._on_stderr = on_stderr
        self._max_reconnects = max_reconnects
        self._stdin = stdin
        self._socket: ClientConnection | None = None
        self._connecting = asyncio.Lock()  # iteration and send_stdin may both connect
        self._sent = False
        self._last_seq: int | None = None
        self._stdout: list[str] = []
        self._stderr: list[str] = []
        self._results: list[Result] = []
        self._events: AsyncIterator[Event] | None = None

    @classmethod
    def follow(
        cls,
        config: ClientConfig,
        sandbox_id: str,
        execution_id: str,
        *,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        max_reconnects: int = 5,
    ) -> Self:
        """Follow an execution started elsewhere (e.g. a package install started with
        `wait: false`): `resume` from its first message, then the live tail."""
        stream = cls(
            config,
            sandbox_id,
            "command",
            "",
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            max_reconnects=max_reconnects,
        )
        stream.execution_id = execution_id
        stream._sent = True  # nothing to start: the opening message is `resume`
        return stream

    def __aiter__(self) -> AsyncIterator[Event]:
        if self._events is None:
            self._events = self._run()
        return self._events

    async def wait(self) -> ExecutionResult:
        """Consume the rest of the stream; the result, or the error as an exception."""
        async for event in self:
            if isinstance(event, Error):
                error = {"code": event.code, "message": event.message, "details": event.details}
                raise error_from_envelope({"error": error})
        if self.result is None:
            raise LLMSafeSpaceError("the stream ended without a result")
        return self.result

    async def cancel(self) -> None:
        """Ask the server to cancel this execution; the stream then ends with a `Complete`
        whose status is `cancelled`. Once the stream has completed, does nothing."""
        if self.result is None:
            await self._send({"type": "cancel", "executionId": self.execution_id})

    async def send_stdin(self, data: str, *, eof: bool = False) -> None:
        """Feed the stdin of a command streamed with `stdin=True`, in order; `eof` closes
        it after `data`. Before the stream is iterated this sends the command first (its
        output waits on the socket for the iteration); once the stream has completed, it
        does nothing."""
        if not self._sent:
            await self._connect()
        step = MAX_STDIN_CHARS
        pieces = [data[start : start + step] for start in range(0, len(data), step)] or [""]
        for number, piece in enumerate(pieces, 1):
            if self.result is not None:
                return
            last = number == len(pieces)
            await self._send(
                {
                    "type": "stdin",
                    "executionId": self.execution_id,
                    "content": piece,
                    "eof": eof and last,
                }
            )

    async def _send(self, message: dict[str, Any]) -> None:
        """Over the stream's socket, or a socket of its own while that one is down."""
        if self._socket is not None:
            with suppress(ConnectionClosed):
                await self._socket.send(json.dumps(message))
                return
        await send_once(self._config, self.sandbox_id, message)

    async def _connect(self) -> ClientConnection | None:
        """The stream's socket, its opening message (execute, or resume after a drop)
        sent: the one already open (`send_stdin` opens it when it comes first), else a new
        one. None for a drop: the API unreachable once the execute went out, or the socket
        closed under the opening."""
        async with self._connecting:
            if self._socket is not None:
                return self._socket
            try:
                socket = await open_stream(self._config, self.sandbox_id)
            except APIConnectionError:
                if not self._sent:
                    raise
                return None
            try:
                await socket.send(json.dumps(self._opening()))
            except ConnectionClosed:
                await socket.close()
                return None
            self._sent = True
            self._socket = socket
            return socket

    async def _run(self) -> AsyncIterator[Event]:
        drops = 0
        while True:
            socket = await self._connect()
            if socket is not None:
                try:
                    async for raw in socket:
                        event = self._handle(json.loads(raw))
                        if event is None:
                            continue
                        drops = 0
                        yield event
                        if isinstance(event, Complete | Error):
                            return
                except ConnectionClosed:
                    pass
                finally:
                    self._socket = None
                    await socket.close()
            drops += 1
            if drops > self._max_reconnects:
                raise ServiceUnavailableError(
                    f"lost the stream of {self.execution_id} and could not resume it",
                    code="service_unavailable",
                )
            await asyncio.sleep(min(0.1 * 2**drops, 2.0))

    def _opening(self) -> dict[str, Any]:
        if self._sent:
            return {
                "type": "resume",
                "executionId": self.execution_id,
                "lastSeq": self._last_seq if self._last_seq is not None else 0,
            }
        message: dict[str, Any] = {
            "type": "execute",
            "executionId": self.execution_id,
            "mode": self._mode,
            "content": self._content,
        }
        if self._timeout is not None:
            message["timeout"] = self._timeout
        if self._env is not None:
            message["env"] = self._env
        if self._cwd is not None:
            message["workingDir"] = self._cwd
        if self._stdin:
            message["stdin"] = True
        return message

    def _handle(self, message: dict[str, Any]) -> Event | None:
        kind = message.get("type")
        if message.get("executionId") not in (None, self.execution_id):
            return None
        if kind == "output":
            return self._output(message)
        if kind == "display":
            return self._display(message)
        if kind == "execution_complete":
            return self._complete(
                ExecutionStatus(message.get("status", "completed")),
                int(message.get("exitCode", 0)),
                message,
            )
        if kind == "execution_cancelled":
            exit_code = int(message.get("exitCode", CANCELLED_EXIT_CODE))
            return self._complete(ExecutionStatus.CANCELLED, exit_code, message)
        if kind == "error":
            details = message.get("details")
            return Error(
                str(message.get("code", "internal_error")),
                str(message.get("message", "")),
                message.get("executionId"),
                details if isinstance(details, dict) else None,
            )
        return None  # execution_start, pong, and kinds this client does not know yet

    def _new(self, message: dict[str, Any]) -> bool:
        """Whether the message was not seen yet (a resume replays from the last `seq`)."""
        seq = message.get("seq")
        if isinstance(seq, int):
            if self._last_seq is not None and seq <= self._last_seq:
                return False
            self._last_seq = seq
        return True

    def _display(self, message: dict[str, Any]) -> Display | None:
        if not self._new(message):
            return None
        result = Result.model_validate(message)
        self._results.append(result)
        return Display(result, message.get("seq"), message.get("timestamp"))

    def _output(self, message: dict[str, Any]) -> Stdout | Stderr | None:
        if not self._new(message):
            return None
        seq = message.get("seq")
        text = str(message.get("content", ""))
        stamp = message.get("timestamp")
        if message.get("stream") == "stderr":
            self._stderr.append(text)
            if self._on_stderr is not None:
                self._on_stderr(text)
            return Stderr(text, seq, stamp)
        self._stdout.append(text)
        if self._on_stdout is not None:
            self._on_stdout(text)
        return Stdout(text, seq, stamp)

    def _complete(
        self, status: ExecutionStatus, exit_code: int, message: dict[str, Any]
    ) -> Complete:
        """The terminal message carries the whole result but the output and the rich
        results, seen as messages."""
        self.result = ExecutionResult.model_validate(
            {
                **message,
                "executionId": self.execution_id,
                "status": status,
                "exitCode": exit_code,
                "stdout": "".join(self._stdout),
                "stderr": "".join(self._stderr),
                "results": self._results,
            }
        )
        return Complete(self.result)


class AsyncInstallStream(AsyncExecutionStream):
    """A package install followed live (`AsyncSandbox.stream_install`). An install that
    failed before the installer ran (e.g. a package the mirror lacks) ends with an error
    result; `wait()` raises it as the exception the waiting call raises."""

    async def wait(self) -> ExecutionResult:
        result = await super().wait()
        if result.status is ExecutionStatus.ERROR and result.error is not None:
            envelope = {"error": {"code": result.error.name, "message": result.error.value}}
            raise error_from_envelope(envelope)
        return result


async def send_once(config: ClientConfig, sandbox_id: str, message: dict[str, Any]) -> None:
    """Open a socket, send one control message (e.g. `cancel`), wait briefly for its
    acknowledgement and close; an `error` reply (e.g. `not_found` for an execution the
    server does not know) is raised as its exception."""
    socket = await open_stream(config, sandbox_id)
    try:
        await socket.send(json.dumps(message))
        reply = await _acknowledgement(socket, message.get("executionId"))
    finally:
        await socket.close()
    if reply is not None and reply.get("type") == "error":
        raise error_from_envelope({"error": reply})


async def _acknowledgement(socket: ClientConnection, execution_id: object) -> dict[str, Any] | None:
    """The first `execution_cancelled` or `error` about this execution (or about none)
    within ACK_SECONDS; None when none came (a cancel of another socket's execution is
    acknowledged on that socket only)."""
    deadline = time.monotonic() + ACK_SECONDS
    with suppress(TimeoutError, ConnectionClosed):
        while (left := deadline - time.monotonic()) > 0:
            reply: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), left))
            kind, about = reply.get("type"), reply.get("executionId")
            if kind in ("execution_cancelled", "error") and about in (None, execution_id):
                return reply
    return None
