"""`GET /api/v1/sandboxes/{id}/terminal` (WebSocket): an interactive shell on a PTY.

Admitted like `/stream` (refused before the upgrade with 401/403/404/409). The gateway
listens to the terminal's output subject, then opens the terminal (or, with
`?terminalId=`, re-attaches to one) and asks its exec-svc owner for the scrollback;
keystrokes and resizes go to the owner as control requests. A closed socket leaves the
terminal running for the owner's grace period; this socket keeps it alive meanwhile.
"""

import asyncio
import json
import re
import time
from typing import Any

import nats.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.subscription import Subscription
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import QueryParams
from starlette.websockets import WebSocket, WebSocketDisconnect

from llmsafespace.contracts import (
    MAX_TERMINAL_SIZE,
    TERMINAL_CLIENT_MESSAGE_TYPES,
    TERMINAL_ID_PATTERN,
    ErrorCode,
    OpenTerminal,
    ServiceError,
    TerminalAttached,
    TerminalClientMessage,
    TerminalControl,
    TerminalError,
    TerminalExit,
    TerminalInput,
    TerminalOutput,
    TerminalPing,
    TerminalPong,
    TerminalReady,
    TerminalResize,
    TerminalServerMessage,
    commands,
    new_terminal_id,
    subjects,
)
from llmsafespace.servicekit import Bus

from .auth import CredentialLost, HeldCredential
from .bodies import MalformedJson, decode_json
from .errors import error_response
from .operation import ApiWebSocketRoute, Operation
from .paths import known_id
from .sockets import CLOSE_UNAUTHORIZED, admit_socket, frame_problem
from .state import state_of
from .validation import frame_details, problems

log = structlog.get_logger()
KEEPALIVE = 10.0  # seconds between keepalives to the owner (well inside its grace)
LOST_EXIT_CODE = -1  # a terminal nobody holds any more (as exec-svc reports a lost sandbox)
_TERMINAL_ID = re.compile(TERMINAL_ID_PATTERN)
_MESSAGE: TypeAdapter[TerminalInput | TerminalResize | TerminalPing] = TypeAdapter(
    TerminalClientMessage
)


def _invalid(message: str) -> TerminalError:
    return TerminalError(code="invalid_message", message=message)


_SIZE = re.compile(r"[0-9]{1,6}")  # ASCII digits: `isdigit` takes "²", which int() refuses


def _size(query: QueryParams) -> tuple[int, int]:
    """The initial `cols` and `rows` (80x24 when absent); 400 naming the bad one."""
    size = {"cols": 80, "rows": 24}
    for name in size:
        raw = query.get(name)
        if raw is None:
            continue
        if not _SIZE.fullmatch(raw) or not 1 <= int(raw) <= MAX_TERMINAL_SIZE:
            raise ServiceError(
                ErrorCode.INVALID_REQUEST,
                f"{name} must be an integer in 1..{MAX_TERMINAL_SIZE}",
                {"fields": {name: f"an integer in 1..{MAX_TERMINAL_SIZE}"}},
            )
        size[name] = int(raw)
    return size["cols"], size["rows"]


class TerminalSession:
    """One socket attached to one terminal."""

    def __init__(
        self,
        websocket: WebSocket,
        bus: Bus,
        held: HeldCredential,
        sandbox_id: str,
        terminal_id: str,
    ) -> None:
        self._ws = websocket
        self._bus = bus
        self._held = held
        self._caller = held.identity.caller
        self._control = commands.terminal_control(sandbox_id, terminal_id)
        self._send_lock = asyncio.Lock()

    async def control(self, action: str, **fields: Any) -> TerminalAttached:
        """A request to the terminal's owner; a terminal nobody owns is not found."""
        request = TerminalControl(caller=self._caller, action=action, **fields)
        try:
            return await self._bus.request(self._control, request)
        except ServiceError as exc:
            if exc.code is ErrorCode.SERVICE_UNAVAILABLE and "no service" in exc.message:
                raise ServiceError(ErrorCode.NOT_FOUND, "terminal not found") from exc
            raise

    async def send(self, message: TerminalServerMessage) -> None:
        async with self._send_lock:
            await self._ws.send_text(message.model_dump_json(by_alias=True, exclude_none=True))

    async def serve(self, output: Subscription, attached: TerminalAttached) -> None:
        tasks = [
            asyncio.create_task(self._relay(output, attached.seq)),
            asyncio.create_task(self._keepalive()),
        ]
        try:
            await self._receive()
        finally:
            for task in tasks:
                task.cancel()
            # A relay that met the closed socket ended with its error: collected here.
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _relay(self, output: Subscription, seen: int) -> None:
        """Live output after the replayed scrollback, then the exit, which closes."""
        async for message in output.messages:
            data = json.loads(message.data)
            if data.get("type") == "output":
                chunk = TerminalOutput.model_validate(data)
                if chunk.seq > seen:
                    seen = chunk.seq
                    await self.send(chunk)
            elif data.get("type") == "exit":
                await self.send(TerminalExit.model_validate(data))
                await self._ws.close()
                return

    async def _keepalive(self) -> None:
        """Keep the terminal held, and the socket only as long as its credential: a
        revoked key or an expired token closes it with 4401 within one period. A
        terminal nobody holds any more (its exec-svc instance died: no hang-up, no exit
        published) ends the socket within one period too, rather than leaving it silent."""
        while True:
            await asyncio.sleep(KEEPALIVE)
            expires = self._held.expires
            try:
                if expires is not None and expires <= time.time():
                    raise CredentialLost
                await self._held.use()
            except CredentialLost:
                reason = "the credential was revoked or expired"
                await self.send(TerminalError(code=ErrorCode.UNAUTHORIZED.value, message=reason))
                await self._ws.close(CLOSE_UNAUTHORIZED, reason)
                return
            try:
                await self.control("keepalive")
            except ServiceError as exc:
                if exc.code is not ErrorCode.NOT_FOUND:  # e.g. a bus hiccup: try again
                    log.info("terminal_keepalive_failed", code=exc.code.value)
                    continue
                log.warning("terminal_lost")
                reason = "terminal not found: the service that held it is gone"
                await self.send(TerminalError(code=exc.code.value, message=reason))
                await self.send(TerminalExit(exit_code=LOST_EXIT_CODE))
                await self._ws.close()
                return

    async def _receive(self) -> None:
        try:
            while True:
                frame = await self._ws.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                text = frame.get("text")
                if text is None:
                    await self.send(_invalid("messages must be JSON text"))
                    continue
                await self._handle(text)
        except (WebSocketDisconnect, RuntimeError):
            return  # closed by us (the shell exited) or by the client

    async def _handle(self, text: str) -> None:
        """Decoded and typed as `/stream` does (`bodies.decode_json`, `frame_problem`):
        JSON that Python cannot hold or nothing downstream can encode (a 4300-digit
        integer, a lone surrogate) is an `invalid_message` error like any other bad frame,
        an unknown type `unknown_message_type`, and the socket keeps serving."""
        try:
            data = decode_json(text)
        except MalformedJson as exc:
            await self.send(_invalid(f"messages must be JSON objects: {exc}"))
            return
        problem = frame_problem(data, TERMINAL_CLIENT_MESSAGE_TYPES)
        if problem is not None:
            code, reason = problem
            await self.send(TerminalError(code=code, message=reason))
            return
        try:
            message = _MESSAGE.validate_python(data)
            if isinstance(message, TerminalInput):
                await self.control("input", data=message.data)
            elif isinstance(message, TerminalResize):
                await self.control("resize", cols=message.cols, rows=message.rows)
            else:
                await self.send(TerminalPong())
        except ValidationError as exc:
            await self.send(_invalid(problems(frame_details(exc))))
        except ServiceError as exc:
            await self.send(TerminalError(code=exc.code.value, message=exc.message))
        except nats.errors.Error:
            unavailable = ErrorCode.SERVICE_UNAVAILABLE.value
            await self.send(TerminalError(code=unavailable, message="message bus unavailable"))
        except WebSocketDisconnect:
            raise
        except Exception as exc:  # a bug answers this message; the socket keeps serving
            log.error("terminal_message_failed", exc_info=exc)
            await self.send(
                TerminalError(code=ErrorCode.INTERNAL_ERROR.value, message="internal error")
            )


async def terminal(websocket: WebSocket) -> None:
    output: Subscription | None = None
    try:
        held, sandbox = await admit_socket(websocket)
        cols, rows = _size(websocket.query_params)
        requested = websocket.query_params.get("terminalId")
        if requested is not None:
            known_id(requested, _TERMINAL_ID, "terminal")
        terminal_id = requested or new_terminal_id()
        bus: Bus = state_of(websocket)["bus"]
        connection: NatsClient = state_of(websocket)["nats"]
        output = await connection.subscribe(subjects.terminal_output(sandbox.id, terminal_id))
        session = TerminalSession(websocket, bus, held, sandbox.id, terminal_id)
        if requested is None:
            opening = OpenTerminal(
                caller=held.identity.caller,
                sandbox_id=sandbox.id,
                terminal_id=terminal_id,
                cols=cols,
                rows=rows,
            )
            await bus.request(commands.TERM_OPEN, opening)
        attached = await session.control("attach")
    except ServiceError as exc:
        if output is not None:
            await output.unsubscribe()
        await websocket.send_denial_response(error_response(exc))
        return
    await websocket.accept()
    structlog.contextvars.bind_contextvars(sandbox_id=sandbox.id, terminal_id=terminal_id)
    try:
        await session.send(TerminalReady(terminal_id=terminal_id))
        if attached.scrollback:
            replay = TerminalOutput(data=attached.scrollback, seq=attached.seq)
            await session.send(replay)
        await session.serve(output, attached)
    finally:
        await output.unsubscribe()


ROUTE = ApiWebSocketRoute(
    "/sandboxes/{sandbox_id}/terminal",
    terminal,
    Operation(
        "WebSocket: an interactive shell on a PTY (upgrade required)",
        "executions",
        None,
        101,
        errors=(403, 404, 409),
        description="Query `cols`, `rows` (1..1000, default 80x24), `terminalId` (re-attach;"
        " its scrollback is replayed first). Send `input {data}`, `resize {cols, rows}`,"
        " `ping`; receive `ready {terminalId}`, `output {data, seq}`, `exit {exitCode}`,"
        " `error {code, message}`, `pong`. Browsers pass `?token=`.",
    ),
)
