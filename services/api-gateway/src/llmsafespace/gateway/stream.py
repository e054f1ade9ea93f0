"""`GET /api/v1/sandboxes/{id}/stream` (WebSocket): run executions and watch them live.

Several executions may run on one socket, told apart by `executionId`. Closing the socket
does not stop them (`cancel` does); a client that reconnects sends `resume` with the last
`seq` it saw and gets the rest, from any gateway replica.
"""

import asyncio
import contextlib
import time
from typing import Any

import nats.errors
import structlog
from nats.aio.client import Client as NatsClient
from pydantic import TypeAdapter, ValidationError
from starlette.websockets import WebSocket, WebSocketDisconnect

from llmsafespace.contracts import (
    CLIENT_MESSAGE_TYPES,
    CancelExecution,
    ClientCancel,
    ClientExecute,
    ClientMessage,
    ClientPing,
    ClientResume,
    ClientStdin,
    ErrorCode,
    ExecutionStdin,
    ServerError,
    ServerMessage,
    ServerPong,
    ServiceError,
    StartExecution,
    commands,
)
from llmsafespace.servicekit import Bus, validation_details

from .auth import CredentialLost, HeldCredential
from .bodies import MalformedJson, decode_json
from .errors import error_response
from .operation import ApiWebSocketRoute, Operation
from .relay import Follower, Outputs, encode, exists, now_ms
from .sandboxes import check_code_size
from .sockets import CLOSE_UNAUTHORIZED, admit_socket, frame_problem
from .state import state_of
from .validation import frame_details, problems

log = structlog.get_logger()
START_WAIT = 10.0  # seconds for an accepted execution to report its start
ParsedMessage = ClientExecute | ClientCancel | ClientResume | ClientStdin | ClientPing
_CLIENT_MESSAGE: TypeAdapter[ParsedMessage] = TypeAdapter(ClientMessage)


def _error(
    code: str,
    message: str,
    execution_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> ServerError:
    return ServerError(
        code=code,
        message=message,
        execution_id=execution_id or None,
        details=details,
        timestamp=now_ms(),
    )


class Session:
    """One client socket on one sandbox."""

    def __init__(
        self,
        websocket: WebSocket,
        bus: Bus,
        connection: NatsClient,
        held: HeldCredential,
        sandbox_id: str,
    ) -> None:
        self._ws = websocket
        self._bus = bus
        self._nc = connection
        self._held = held
        self._caller = held.identity.caller
        self._sandbox_id = sandbox_id
        self._send_lock = asyncio.Lock()
        self._closed = False
        self._relays: dict[str, asyncio.Task[None]] = {}
        # Started here and not yet seen to start (or be refused): see `_once_started`.
        self._starting: dict[str, asyncio.Event] = {}
        self._seen: set[str] = set()
        self._outputs: Outputs | None = None  # opened with the first execution
        self._grace: float = state_of(websocket)["settings"].stream_grace

    async def send(self, message: ServerMessage) -> None:
        async with self._send_lock:
            if not self._closed:
                await self._ws.send_text(encode(message))

    async def _end(self, reason: str) -> None:
        """Close the socket for its credential: an `unauthorized` error, then 4401."""
        async with self._send_lock:
            if self._closed:
                return
            self._closed = True
            await self._ws.send_text(encode(_error(ErrorCode.UNAUTHORIZED.value, reason)))
            await self._ws.close(CLOSE_UNAUTHORIZED, reason)

    async def _end_at_expiry(self, expires: int) -> None:
        """An idle socket ends with its token too."""
        await asyncio.sleep(max(0.0, expires - time.time()))
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client left first
            await self._end("the access token expired")

    async def serve(self) -> None:
        expires = self._held.expires
        expiry = None if expires is None else asyncio.create_task(self._end_at_expiry(expires))
        try:
            while True:
                frame = await self._ws.receive()
                if frame["type"] == "websocket.disconnect":
                    break
                text = frame.get("text")
                if text is None:  # a binary frame (receive_text would fail on it)
                    await self.send(_error("invalid_message", "messages must be JSON text"))
                    continue
                await self._handle(text)
        except CredentialLost:
            await self._end("the credential was revoked or expired")
        except WebSocketDisconnect:
            pass
        finally:
            for task in [*self._relays.values(), *([expiry] if expiry else [])]:
                task.cancel()
            if self._outputs is not None:
                await self._outputs.close()

    async def _handle(self, text: str) -> None:
        try:
            data = decode_json(text)
        except MalformedJson as exc:
            await self.send(_error("invalid_message", f"messages must be JSON objects: {exc}"))
            return
        problem = frame_problem(data, CLIENT_MESSAGE_TYPES)
        if problem is not None:
            await self.send(_error(*problem))
            return
        execution_id = data.get("executionId") if isinstance(data.get("executionId"), str) else None
        try:
            message = _CLIENT_MESSAGE.validate_python(data)
            if not isinstance(message, ClientExecute):
                await self._held.use()  # an execute is checked with its rate-limit hit
            if isinstance(message, ClientExecute):
                await self._execute(message)
            elif isinstance(message, ClientCancel):
                await self._cancel(message)
            elif isinstance(message, ClientStdin):
                await self._stdin(message)
            elif isinstance(message, ClientResume):
                await self._resume(message)
            elif isinstance(message, ClientPing):
                stamp = now_ms() if message.timestamp is None else message.timestamp
                await self.send(ServerPong(timestamp=stamp))
        except ValidationError as exc:
            details = frame_details(exc)
            await self.send(_error("invalid_request", problems(details), execution_id, details))
        except ServiceError as exc:
            await self.send(_error(exc.code.value, exc.message, execution_id, exc.details))
        except nats.errors.Error as exc:  # JetStream refused or the bus is down: say so
            log.warning("stream_bus_error", error=str(exc))
            await self.send(
                _error(ErrorCode.SERVICE_UNAVAILABLE.value, "message bus unavailable", execution_id)
            )
        except (CredentialLost, WebSocketDisconnect):
            raise
        except Exception as exc:  # a bug answers this message; the socket keeps serving
            log.error("stream_message_failed", exc_info=exc)
            await self.send(_error(ErrorCode.INTERNAL_ERROR.value, "internal error", execution_id))

    async def _execute(self, message: ClientExecute) -> None:
        execution_id = message.execution_id
        if execution_id in self._seen:
            raise ServiceError(
                ErrorCode.INVALID_REQUEST, f"executionId {execution_id} was already used"
            )
        check_code_size(message.content)
        try:
            request = message.request()
        except ValidationError as exc:  # its bounds (e.g. `timeout`), named as the client did
            details = validation_details(exc)
            raise ServiceError(ErrorCode.INVALID_REQUEST, problems(details), details) from exc
        quota = await self._held.use("execute_code")
        if quota is not None and quota.exceeded:
            raise quota.refusal()
        self._seen.add(execution_id)
        if self._outputs is None:
            self._outputs = await Outputs.open(self._nc, self._sandbox_id)
        follower = Follower.shared(
            self._nc, self._outputs, self._sandbox_id, execution_id, self._grace
        )
        command = StartExecution(
            caller=self._caller,
            sandbox_id=self._sandbox_id,
            execution_id=execution_id,
            request=request,
            stdin=message.stdin,
        )
        try:
            refusals_to = self._outputs.refusals_to(execution_id)
            await self._bus.start(commands.EXEC_START, command, refusals_to)
        except BaseException:
            await follower.close()
            raise
        self._starting[execution_id] = asyncio.Event()
        self._relay(follower, 0)

    async def _once_started(self, execution_id: str) -> None:
        """Wait until an execution started on this socket is seen to start, or to be
        refused. `Bus.start` waits for no acceptance, so a cancel or input sent right
        after its execute could otherwise reach exec-svc before the execution does."""
        starting = self._starting.get(execution_id)
        if starting is not None:
            await starting.wait()

    def _seen_starting(self, execution_id: str) -> None:
        starting = self._starting.pop(execution_id, None)
        if starting is not None:
            starting.set()

    async def _resume(self, message: ClientResume) -> None:
        if message.execution_id in self._relays and not self._relays[message.execution_id].done():
            raise ServiceError(
                ErrorCode.INVALID_REQUEST, f"execution {message.execution_id} is already followed"
            )
        if not await exists(self._nc, self._sandbox_id, message.execution_id):
            raise ServiceError(ErrorCode.NOT_FOUND, f"execution {message.execution_id} not found")
        self._seen.add(message.execution_id)
        follower = await Follower.replay(
            self._nc, self._sandbox_id, message.execution_id, self._grace
        )
        self._relay(follower, message.last_seq)

    async def _known(self, execution_id: str) -> None:
        """Raise `not_found` unless the execution was started or resumed on this socket
        (no bus round trip) or has output in the stream (one lookup, then remembered):
        a cancel or input for an execution that does not exist is answered, not
        broadcast to no one."""
        if execution_id in self._seen:
            return
        if not await exists(self._nc, self._sandbox_id, execution_id):
            raise ServiceError(ErrorCode.NOT_FOUND, f"execution {execution_id} not found")
        self._seen.add(execution_id)

    async def _cancel(self, message: ClientCancel) -> None:
        await self._known(message.execution_id)
        await self._once_started(message.execution_id)
        command = CancelExecution(
            caller=self._caller, sandbox_id=self._sandbox_id, execution_id=message.execution_id
        )
        await self._bus.broadcast(commands.EXEC_CANCEL, command)

    async def _stdin(self, message: ClientStdin) -> None:
        """Input for a command started on any socket with `stdin: true`; whichever
        exec-svc instance runs it writes it, in order (a finished one drops it)."""
        await self._known(message.execution_id)
        await self._once_started(message.execution_id)
        command = ExecutionStdin(
            caller=self._caller,
            sandbox_id=self._sandbox_id,
            execution_id=message.execution_id,
            content=message.content,
            eof=message.eof,
        )
        await self._bus.broadcast(commands.EXEC_STDIN, command)

    def _relay(self, follower: Follower, after_seq: int) -> None:
        execution_id = follower.execution_id

        async def relay() -> None:
            try:
                async for message in follower.messages(after_seq, START_WAIT):
                    self._seen_starting(execution_id)
                    await self.send(message)
            except WebSocketDisconnect:
                pass
            finally:
                self._seen_starting(execution_id)
                await follower.close()

        task = self._relays[execution_id] = asyncio.create_task(relay())
        # Forgotten once done: a socket may run executions for hours, one relay each.
        task.add_done_callback(
            lambda done: (
                self._relays.pop(execution_id) if self._relays.get(execution_id) is done else None
            )
        )


async def stream(websocket: WebSocket) -> None:
    try:
        held, sandbox = await admit_socket(websocket)
    except ServiceError as exc:
        await websocket.send_denial_response(error_response(exc))
        return
    await websocket.accept()
    structlog.contextvars.bind_contextvars(sandbox_id=sandbox.id)
    state = state_of(websocket)
    session = Session(websocket, state["bus"], state["nats"], held, sandbox.id)
    await session.serve()


ROUTE = ApiWebSocketRoute(
    "/sandboxes/{sandbox_id}/stream",
    stream,
    Operation(
        "WebSocket: streamed executions (upgrade required)",
        "executions",
        None,
        101,
        errors=(403, 404, 409),
        description="Refused before the upgrade: 409 `sandbox_paused` for a paused sandbox"
        " (unless it was created with `autoResume`: the upgrade resumes it), or"
        " `sandbox_not_running`. Send `execute`, `cancel`, `stdin`, `resume`, `ping`;"
        " receive `execution_start`, `output`, `display`, `execution_complete` or"
        " `execution_cancelled`, `error`, `pong` (every message's schema: docs/asyncapi.json)."
        " Browsers pass `?token=`.",
    ),
)
