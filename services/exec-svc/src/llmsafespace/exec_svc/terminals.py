"""Interactive terminals: each is a shell on a PTY in the sandbox, held open by the
exec-svc instance that answered `term.open` (one long agent request). That instance
answers the terminal's control subject (attach, input, resize, keepalive, close) and
publishes its output and exit on the output subject, which every gateway replica attached
to it follows. A bounded scrollback is kept for re-attaching; a terminal nobody has
contacted for `grace` seconds (no socket attached) is hung up."""

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import nats.errors
import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from llmsafespace.agent.frames import Op
from llmsafespace.contracts import (
    Contract,
    ErrorCode,
    OpenTerminal,
    ServiceError,
    TerminalAttached,
    TerminalControl,
    TerminalExit,
    TerminalOpened,
    TerminalOutput,
    commands,
    subjects,
)
from llmsafespace.runtime import AgentClient, DriverError
from llmsafespace.runtime.agent_client import ControlQueue

from .agents import Agents
from .background import Background

log = structlog.get_logger()
LIFETIME = 7 * 86400.0  # a terminal's own time limit: the sandbox's lifetime bounds it first
LOST_EXIT_CODE = -1  # the sandbox went away under the terminal


@dataclass
class Terminal:
    owner_id: str
    sandbox_id: str
    terminal_id: str
    scrollback_chars: int
    control: ControlQueue = field(default_factory=asyncio.Queue)
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    chunks: deque[str] = field(default_factory=deque)
    held: int = 0
    seq: int = 0
    last_contact: float = field(default_factory=time.monotonic)

    def record(self, text: str) -> int:
        """Keep `text` in the scrollback (oldest chunks dropped past the bound)."""
        self.seq += 1
        self.chunks.append(text)
        self.held += len(text)
        while self.held > self.scrollback_chars and len(self.chunks) > 1:
            self.held -= len(self.chunks.popleft())
        return self.seq


class Terminals:
    def __init__(
        self, agents: Agents, connection: NatsClient, grace: float, scrollback_chars: int
    ) -> None:
        self._agents = agents
        self._nc = connection
        self._grace = grace
        self._scrollback_chars = scrollback_chars
        self._open: dict[str, Terminal] = {}
        self._background = Background()

    async def open(self, command: OpenTerminal) -> TerminalOpened:
        """Start the shell (the caller must own the sandbox) and serve its subjects."""
        resolved, client = await self._agents.client(command.caller, command.sandbox_id)
        if command.terminal_id in self._open:
            raise ServiceError(ErrorCode.CONFLICT, f"terminal {command.terminal_id} exists")
        terminal = Terminal(
            resolved.owner_id, command.sandbox_id, command.terminal_id, self._scrollback_chars
        )
        subject = commands.terminal_control(command.sandbox_id, command.terminal_id).subject
        subscription = await self._nc.subscribe(subject, cb=self._controller(terminal))
        self._open[command.terminal_id] = terminal
        self._background.start(
            self._run(terminal, client, subscription, command.cols, command.rows)
        )
        log.info("terminal_opened", sandbox_id=command.sandbox_id, terminal_id=terminal.terminal_id)
        return TerminalOpened(terminal_id=command.terminal_id)

    async def _run(
        self,
        terminal: Terminal,
        client: AgentClient,
        subscription: Subscription,
        cols: int,
        rows: int,
    ) -> None:
        output = subjects.terminal_output(terminal.sandbox_id, terminal.terminal_id)

        async def on_output(_: str, text: str) -> None:
            seq = terminal.record(text)
            await self._publish(output, TerminalOutput(data=text, seq=seq))

        reaper = asyncio.create_task(self._reap_when_abandoned(terminal))
        exit_code = LOST_EXIT_CODE
        try:
            result = await client.terminal(
                cols=cols,
                rows=rows,
                timeout=LIFETIME,
                on_output=on_output,
                control=terminal.control,
                cancel=terminal.cancel,
            )
            exit_code = result.exit_code
        except DriverError as exc:
            log.info("terminal_lost", terminal_id=terminal.terminal_id, error=str(exc))
        finally:
            reaper.cancel()
            del self._open[terminal.terminal_id]
            with contextlib.suppress(nats.errors.Error):  # the bus may be closing (shutdown)
                await subscription.unsubscribe()
                await self._publish(output, TerminalExit(exit_code=exit_code))
            log.info("terminal_closed", terminal_id=terminal.terminal_id, exit_code=exit_code)

    async def _reap_when_abandoned(self, terminal: Terminal) -> None:
        while True:
            left = terminal.last_contact + self._grace - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(left)
        log.info("terminal_abandoned", terminal_id=terminal.terminal_id)
        terminal.cancel.set()

    def _controller(self, terminal: Terminal) -> Callable[[Msg], Awaitable[None]]:
        async def handle(message: Msg) -> None:
            try:
                control = TerminalControl.model_validate_json(message.data)
            except ValidationError:
                await self._fail(message, ServiceError(ErrorCode.INVALID_REQUEST, "bad control"))
                return
            if not control.caller.can_access(terminal.owner_id):
                await self._fail(message, ServiceError(ErrorCode.NOT_FOUND, "terminal not found"))
                return
            terminal.last_contact = time.monotonic()
            reply = TerminalAttached()
            if control.action == "attach":
                reply = TerminalAttached(scrollback="".join(terminal.chunks), seq=terminal.seq)
            elif control.action == "input":
                terminal.control.put_nowait({"op": Op.STDIN, "data": control.data})
            elif control.action == "resize":
                resize = {"op": Op.RESIZE, "cols": control.cols, "rows": control.rows}
                terminal.control.put_nowait(resize)
            elif control.action == "close":
                terminal.cancel.set()
            await self._answer(message, reply)

        return handle

    async def _answer(self, message: Msg, reply: Contract) -> None:
        if message.reply:
            await self._nc.publish(message.reply, reply.model_dump_json(by_alias=True).encode())

    async def _fail(self, message: Msg, error: ServiceError) -> None:
        if message.reply:
            body = error.envelope().model_dump_json(exclude_none=True).encode()
            await self._nc.publish(message.reply, body)

    async def _publish(self, subject: str, message: Contract) -> None:
        await self._nc.publish(subject, message.model_dump_json(by_alias=True).encode())

    async def drain(self) -> None:
        """Hang up every terminal this instance holds and wait for them to end."""
        for terminal in self._open.values():
            terminal.cancel.set()
        await self._background.wait()
