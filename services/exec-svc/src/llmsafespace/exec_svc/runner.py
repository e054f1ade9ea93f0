"""Runs executions in sandboxes' agents: to completion (sync) or streamed in the background."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.aio.client import Client as NatsClient

from llmsafespace.contracts import (
    Caller,
    CancelExecution,
    ErrorCode,
    ExecEventName,
    ExecuteRequest,
    ExecutionAccepted,
    ExecutionError,
    ExecutionEvent,
    ExecutionResult,
    ExecutionStatus,
    ExecutionStdin,
    ExecutionType,
    RunExecution,
    ServiceError,
    StartExecution,
    subjects,
)
from llmsafespace.runtime import (
    AgentClient,
    AgentResult,
    DisplayCallback,
    OutputCallback,
)
from llmsafespace.runtime.agent_client import StdinQueue
from llmsafespace.servicekit import Bus

from .agent_errors import agent_failures
from .agents import Agents
from .announce import Flights, StartedEvent
from .background import Background
from .metrics import EXECUTION_SECONDS, EXECUTIONS
from .output import OutputPublisher
from .results import bare_result, execution_result
from .store import ExecutionStore

log = structlog.get_logger()
ResultCallback = Callable[[ExecutionResult], Awaitable[None]]


@dataclass
class Running:
    """An execution this instance runs: who started it and how to stop it."""

    owner: Caller
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    last_output: float = field(default_factory=time.monotonic)
    idle_expired: bool = False
    stdin: StdinQueue | None = None  # set for a command started with a stdin pipe

    async def watch_idle(self, idle: float) -> None:
        """Cancel once no output came for `idle` seconds."""
        while True:
            quiet_left = self.last_output + idle - time.monotonic()
            if quiet_left <= 0:
                break
            await asyncio.sleep(quiet_left)
        self.idle_expired = True
        self.cancel.set()


class Runner:
    def __init__(
        self,
        agents: Agents,
        store: ExecutionStore,
        bus: Bus,
        connection: NatsClient,
        output_limit: int,
        flights: Flights,
    ) -> None:
        self._agents = agents
        self._flights = flights
        self._store = store
        self._bus = bus
        self._nc = connection
        self._output_limit = output_limit
        # Keyed by (sandbox, execution): a client picks its execution ids, so they are
        # unique within its sandbox only (another tenant's `exec-1` is none of its business).
        self._running: dict[tuple[str, str], Running] = {}
        self._background = Background()

    async def run(
        self, command: RunExecution, on_output: OutputCallback | None = None
    ) -> ExecutionResult:
        """Run to completion and return the whole result (output also to ``on_output``)."""
        _, client = await self._agents.client(command.caller, command.sandbox_id)
        running = self._register(command.sandbox_id, command.execution_id, command.caller)
        try:
            return await self._execute(command, client, running, on_output)
        finally:
            self._running.pop((command.sandbox_id, command.execution_id), None)

    async def start(self, command: StartExecution) -> ExecutionAccepted:
        """Accept a streamed execution; it runs on after this reply."""
        _, client = await self._agents.client(command.caller, command.sandbox_id)
        running = self._register(command.sandbox_id, command.execution_id, command.caller)
        if command.stdin and command.request.type is ExecutionType.COMMAND:
            running.stdin = asyncio.Queue()
        self._background.start(self._stream(command, client, running))
        return ExecutionAccepted(execution_id=command.execution_id)

    def cancel(self, command: CancelExecution) -> None:
        """Stop an execution if this instance runs it (others ignore the broadcast)."""
        running = self._running.get((command.sandbox_id, command.execution_id))
        if running is not None and command.caller.can_access(running.owner.user_id):
            log.info("execution_cancel_requested", execution_id=command.execution_id)
            running.cancel.set()

    def stdin(self, command: ExecutionStdin) -> None:
        """Feed a running command's stdin if this instance runs it with a stdin pipe."""
        running = self._running.get((command.sandbox_id, command.execution_id))
        if (
            running is not None
            and running.stdin is not None
            and command.caller.can_access(running.owner.user_id)
        ):
            running.stdin.put_nowait((command.content, command.eof))

    def _register(self, sandbox_id: str, execution_id: str, owner: Caller) -> Running:
        key = (sandbox_id, execution_id)
        if key in self._running:
            raise ServiceError(ErrorCode.CONFLICT, f"execution {execution_id} is already running")
        running = self._running[key] = Running(owner=owner)
        return running

    async def _stream(self, command: StartExecution, client: AgentClient, running: Running) -> None:
        publisher = OutputPublisher(
            self._nc, command.sandbox_id, command.execution_id, self._output_limit
        )

        async def ended(result: ExecutionResult) -> None:
            # The output and results went out as messages; the terminal marker has the rest.
            update = {
                "output_truncated": publisher.truncated,
                "stdout": "",
                "stderr": "",
                "results": [],
            }
            await publisher.ended(result.model_copy(update=update))

        try:
            await publisher.started(command.request.timeout, datetime.now(UTC))
            try:
                await self._execute(
                    command, client, running, publisher.output, publisher.display, ended
                )
            except ServiceError as exc:
                error = ExecutionError(name="ExecutionFailed", value=exc.message, traceback="")
                await ended(bare_result(command, error))
        except Exception:
            log.exception("streamed_execution_failed", execution_id=command.execution_id)
        finally:
            self._running.pop((command.sandbox_id, command.execution_id), None)

    async def _execute(
        self,
        command: RunExecution | StartExecution,
        client: AgentClient,
        running: Running,
        on_output: OutputCallback | None,
        on_display: DisplayCallback | None = None,
        on_result: ResultCallback | None = None,
    ) -> ExecutionResult:
        """Run in the agent, then book the result: metrics, summary row, events, log.
        ``on_result`` gets the result before that bookkeeping (a streamed execution's
        terminal message goes out first: its client waits for it, nobody for the rest)."""
        request = command.request
        structlog.contextvars.bind_contextvars(
            sandbox_id=command.sandbox_id, execution_id=command.execution_id
        )
        event = ExecutionEvent(
            execution_id=command.execution_id,
            sandbox_id=command.sandbox_id,
            user_id=command.caller.user_id,
            type=request.type,
        )
        started_at = datetime.now(UTC)
        announced = StartedEvent(
            self._bus,
            self._subject(command, ExecEventName.STARTED),
            event.model_copy(update={"started_at": started_at}),
            self._flights,
        )

        async def observe(stream: str, text: str) -> None:
            running.last_output = time.monotonic()
            if on_output is not None:
                await on_output(stream, text)

        async def shown(bundle: dict[str, Any]) -> None:
            running.last_output = time.monotonic()
            if on_display is not None:
                await on_display(bundle)

        idle = request.idle_timeout
        watchdog = asyncio.create_task(running.watch_idle(idle)) if idle else None
        try:
            # e.g. a workingDir that does not exist (400), or the sandbox gone (409)
            with agent_failures(self._agents, command.sandbox_id, during="the execution"):
                # A streamed execution's id may be the client's: the agent refuses one it ran.
                unique = command.execution_id if isinstance(command, StartExecution) else None
                outcome = await self._agent_call(client, request, observe, shown, running, unique)
        except ServiceError:
            await announced.ended()
            await self._bus.event(self._subject(command, ExecEventName.FAILED), event)
            raise
        finally:
            if watchdog is not None:
                watchdog.cancel()
        result = execution_result(command, started_at, outcome, running.idle_expired)
        try:
            if on_result is not None:
                await on_result(result)
        finally:  # booked even if the terminal message could not be published
            await self._book(command, announced, event, result, outcome)
        return result

    async def _book(
        self,
        command: RunExecution | StartExecution,
        announced: StartedEvent,
        event: ExecutionEvent,
        result: ExecutionResult,
        outcome: AgentResult,
    ) -> None:
        kind = command.request.type
        EXECUTIONS.labels(type=kind.value, status=result.status.value).inc()
        EXECUTION_SECONDS.labels(type=kind.value).observe(result.duration_ms / 1000)
        sizes = (len(outcome.stdout.encode()), len(outcome.stderr.encode()))
        self._store.record(command.caller.user_id, kind, result, sizes)
        final = (
            ExecEventName.CANCELLED
            if result.status is ExecutionStatus.CANCELLED
            else ExecEventName.COMPLETED
        )
        await announced.ended()
        await self._bus.event(
            self._subject(command, final),
            event.model_copy(
                update={
                    "status": result.status,
                    "exit_code": result.exit_code,
                    "duration_ms": result.duration_ms,
                }
            ),
        )
        log.info("execution_finished", status=result.status, exit_code=result.exit_code)

    @staticmethod
    async def _agent_call(
        client: AgentClient,
        request: ExecuteRequest,
        on_output: OutputCallback,
        on_display: DisplayCallback,
        running: Running,
        execution_id: str | None,
    ) -> AgentResult:
        cancel = running.cancel
        if request.type is ExecutionType.CODE:
            return await client.run_code(
                request.content,
                timeout=request.timeout,
                env=request.env,
                cwd=request.working_dir,
                on_output=on_output,
                cancel=cancel,
                on_display=on_display,
                execution_id=execution_id,
            )
        return await client.run_command(
            request.content,
            timeout=request.timeout,
            env=request.env,
            cwd=request.working_dir,
            on_output=on_output,
            cancel=cancel,
            stdin=running.stdin,
            execution_id=execution_id,
        )

    @staticmethod
    def _subject(command: RunExecution | StartExecution, event: ExecEventName) -> str:
        return subjects.exec_event(command.sandbox_id, command.execution_id, event)

    async def drain(self) -> None:
        """Let streamed executions and pending bookkeeping finish (graceful shutdown)."""
        await self._background.wait()
        await self._store.drain()
