"""`Runner` without servers: exec-svc's own router on FastStream's test broker, a scripted
agent in place of the sandbox's, and what comes out: a synchronous execution's result, a
streamed one's messages and terminal marker, cancel, and what a timeout (the agent's, or
an idle deadline) and an agent's failure become."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import nats.errors
import pytest
from faststream import Context
from faststream.nats import NatsBroker, NatsRouter, TestNatsBroker
from nats.aio.client import Client as NatsClient
from pydantic import TypeAdapter

from llmsafespace.agent.frames import CANCELLED_EXIT_CODE, Outcome, Usage
from llmsafespace.contracts import (
    Caller,
    CancelExecution,
    EndedBy,
    EndedMarker,
    ErrorCode,
    ExecuteRequest,
    ExecutionEvent,
    ExecutionResult,
    ExecutionStatus,
    ExecutionType,
    ResolvedSandbox,
    Role,
    RunExecution,
    SandboxStatus,
    ServiceError,
    StartExecution,
    commands,
    subjects,
)
from llmsafespace.contracts.stream import OutputMessage
from llmsafespace.exec_svc.agents import Agents
from llmsafespace.exec_svc.handlers import create_router
from llmsafespace.exec_svc.packages import Packages
from llmsafespace.exec_svc.runner import Runner
from llmsafespace.exec_svc.store import ExecutionStore
from llmsafespace.exec_svc.transfers import Files
from llmsafespace.runtime import (
    TIMEOUT_EXIT_CODE,
    AgentRequestError,
    AgentResult,
    AgentUnavailable,
    DisplayCallback,
    OutputCallback,
)
from llmsafespace.runtime.agent_client import StdinQueue
from llmsafespace.servicekit import BrokerConnection, Bus, include_commands, middlewares

OWNER = Caller(user_id="usr-aaaaaaaaaaaa", role=Role.USER)
OTHER = Caller(user_id="usr-bbbbbbbbbbbb", role=Role.USER)
SANDBOX = "sb-aaaaaaaaaaaa"
SUBJECT = "message.raw_message.subject"  # of the message a subscriber was given
MESSAGES: TypeAdapter[OutputMessage] = TypeAdapter(OutputMessage)


@dataclass
class Call:
    """One execution as the agent receives it; the script talks back through it."""

    op: str
    content: str
    timeout: float
    cancel: asyncio.Event
    on_output: OutputCallback | None
    on_display: DisplayCallback | None
    execution_id: str | None = None  # what the agent is asked to hold unique (streamed)
    output: dict[str, list[str]] = field(default_factory=lambda: {"stdout": [], "stderr": []})
    results: list[dict[str, Any]] = field(default_factory=list)

    async def write(self, stream: str, text: str) -> None:
        self.output[stream].append(text)
        if self.on_output is not None:
            await self.on_output(stream, text)

    async def show(self, bundle: dict[str, Any]) -> None:
        self.results.append(bundle)
        if self.on_display is not None:
            await self.on_display(bundle)


Script = Callable[[Call], Awaitable[Outcome]]


def exited(code: int = 0, wall_ms: float = 5.0) -> Outcome:
    return Outcome("completed", code, "exit", Usage(wall_ms, 2.0, 4096))


def cancelled() -> Outcome:
    return Outcome("cancelled", CANCELLED_EXIT_CODE, "cancelled", Usage(10.0, 0.0, 4096))


def ending(result: ExecutionResult) -> tuple[ExecutionStatus, int, EndedBy | None]:
    return result.status, result.exit_code, result.ended_by


class ScriptedAgent:
    """The `AgentClient` execution calls `Runner` makes, answered by `script` (the agent's
    side: it writes output and returns its `Outcome`), assembled into an `AgentResult` as
    the real client does: the output it streamed, then the outcome's fields."""

    closed = False

    def __init__(self) -> None:
        self.script: Script = lambda call: self._exit(call)
        self.calls: list[Call] = []
        self.running = asyncio.Event()  # set once a call has reached the script

    @staticmethod
    async def _exit(call: Call) -> Outcome:
        return exited()

    async def run_code(
        self,
        code: str,
        *,
        timeout: float,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_output: OutputCallback | None = None,
        cancel: asyncio.Event | None = None,
        on_display: DisplayCallback | None = None,
        execution_id: str | None = None,
    ) -> AgentResult:
        assert cancel is not None  # the runner always passes one
        call = Call("run_code", code, timeout, cancel, on_output, on_display, execution_id)
        return await self._run(call)

    async def run_command(
        self,
        command: str,
        *,
        timeout: float,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_output: OutputCallback | None = None,
        cancel: asyncio.Event | None = None,
        stdin: StdinQueue | None = None,
        execution_id: str | None = None,
    ) -> AgentResult:
        assert cancel is not None
        call = Call("run_command", command, timeout, cancel, on_output, None, execution_id)
        return await self._run(call)

    async def _run(self, call: Call) -> AgentResult:
        self.calls.append(call)
        self.running.set()
        outcome = await self.script(call)
        return AgentResult(
            status=outcome.status,
            exit_code=outcome.exit_code,
            stdout="".join(call.output["stdout"]),
            stderr="".join(call.output["stderr"]),
            result=outcome.result,
            error=outcome.error,
            ended_by=outcome.ended_by,
            wall_ms=outcome.usage.wall_ms,
            cpu_ms=outcome.usage.cpu_ms,
            peak_memory_bytes=outcome.usage.peak_memory_bytes,
            results=tuple(call.results),
        )


class Reach:
    """`Agents` for one sandbox of OWNER's, whose agent is `agent`."""

    def __init__(self, agent: ScriptedAgent) -> None:
        self.agent = agent
        self.forgotten: list[str] = []

    async def client(self, caller: Caller, sandbox_id: str) -> tuple[ResolvedSandbox, Any]:
        if sandbox_id != SANDBOX or not caller.can_access(OWNER.user_id):
            raise ServiceError(ErrorCode.NOT_FOUND, f"sandbox {sandbox_id} not found")
        resolved = ResolvedSandbox(
            sandbox_id=SANDBOX,
            owner_id=OWNER.user_id,
            status=SandboxStatus.RUNNING,
            endpoint="tcp://agent:1",
            token="t",
        )
        return resolved, self.agent

    def forget(self, sandbox_id: str) -> None:
        self.forgotten.append(sandbox_id)

    def paused(self, sandbox_id: str) -> bool:
        return False


class Records:
    """`ExecutionStore`: the summary rows it was given."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, ExecutionType, ExecutionStatus, tuple[int, int]]] = []

    def record(
        self, owner_id: str, kind: ExecutionType, result: ExecutionResult, sizes: tuple[int, int]
    ) -> None:
        self.rows.append((owner_id, kind, result.status, sizes))

    async def drain(self) -> None:
        return None


class BrokerStream:
    """What `OutputPublisher` uses of the NATS connection, plain and JetStream, over the
    test broker: its messages reach the test's subscriber."""

    def __init__(self, broker: NatsBroker) -> None:
        self._broker = broker
        self.store_down = False  # JetStream refuses what must be stored (terminal markers)

    def jetstream(self) -> "BrokerStream | _Refusing":
        return _Refusing() if self.store_down else self

    async def publish(self, subject: str, payload: bytes) -> None:
        await self._broker.publish(payload, subject)


class _Refusing:
    """A JetStream that stores nothing."""

    async def publish(self, subject: str, payload: bytes) -> None:
        raise nats.errors.NoRespondersError


class Flights:
    """Executions in flight (`InFlight` keeps them on the bus)."""

    def __init__(self) -> None:
        self.running: set[tuple[str, str]] = set()

    async def record(self, started: ExecutionEvent) -> None:
        self.running.add((started.sandbox_id, started.execution_id))

    async def done(self, sandbox_id: str, execution_id: str) -> None:
        self.running.discard((sandbox_id, execution_id))


class World:
    def __init__(self) -> None:
        self.agent = ScriptedAgent()
        self.reach = Reach(self.agent)
        self.records = Records()
        self.events: list[str] = []  # the exec events' names, as published
        self.output: list[OutputMessage] = []
        self.broker = NatsBroker(middlewares=middlewares(), logger=None)
        self.bus = Bus(BrokerConnection(self.broker))
        agents = cast(Agents, self.reach)
        self.stream = BrokerStream(self.broker)
        connection = cast(NatsClient, self.stream)
        self.flights = Flights()
        self.runner = Runner(
            agents, cast(ExecutionStore, self.records), self.bus, connection, 1 << 20, self.flights
        )
        files = Files(agents, self.bus, connection, 1 << 20, 30.0)
        packages = Packages(agents, self.runner, self.bus, connection, 1 << 20, None)
        include_commands(self.broker, create_router(agents, self.runner, files, packages, 4))
        listening = NatsRouter()

        @listening.subscriber(subjects.EVENTS_ALL)
        async def event(_: ExecutionEvent, subject: str = Context(SUBJECT)) -> None:
            self.events.append(subject.rsplit(".", 1)[-1])

        @listening.subscriber(subjects.OUTPUT_ALL)
        async def output(message: dict[str, Any]) -> None:
            self.output.append(MESSAGES.validate_python(message))

        self.broker.include_router(listening)

    async def run(self, request: ExecuteRequest, caller: Caller = OWNER) -> ExecutionResult:
        command = RunExecution(
            caller=caller, sandbox_id=SANDBOX, execution_id="exec-1", request=request
        )
        return await self.bus.request(commands.EXEC_RUN, command)

    async def start(self, request: ExecuteRequest) -> None:
        command = StartExecution(
            caller=OWNER, sandbox_id=SANDBOX, execution_id="exec-1", request=request
        )
        accepted = await self.bus.request(commands.EXEC_START, command)
        assert accepted.execution_id == "exec-1"

    async def cancel(self, caller: Caller) -> None:
        command = CancelExecution(caller=caller, sandbox_id=SANDBOX, execution_id="exec-1")
        await self.bus.broadcast(commands.EXEC_CANCEL, command)

    def ended(self) -> ExecutionResult:
        """The streamed execution's terminal marker: the last message, and the only one."""
        markers = [message for message in self.output if isinstance(message, EndedMarker)]
        assert len(markers) == 1
        assert self.output[-1] is markers[0]
        return markers[0].result


def code(content: str, **request: Any) -> ExecuteRequest:
    return ExecuteRequest(type=ExecutionType.CODE, content=content, **request)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    made = World()
    async with TestNatsBroker(made.broker):
        yield made
        for call in made.agent.calls:  # what a failed test left running
            call.cancel.set()
        await made.runner.drain()


async def test_a_synchronous_execution_answers_with_its_whole_result(world: World) -> None:
    async def script(call: Call) -> Outcome:
        await call.write("stdout", "hello\n")
        await call.write("stderr", "careful\n")
        await call.show({"data": {"text/plain": "42"}, "isMainResult": True, "truncated": False})
        return exited(wall_ms=12.0)

    world.agent.script = script
    result = await world.run(code("print('hello')", timeout=7))
    assert ending(result) == (ExecutionStatus.COMPLETED, 0, EndedBy.EXIT)
    assert (result.stdout, result.stderr) == ("hello\n", "careful\n")
    assert [item.data for item in result.results] == [{"text/plain": "42"}]
    assert (result.execution_id, result.sandbox_id) == ("exec-1", SANDBOX)
    assert result.duration_ms == 12.0
    assert result.usage is not None
    assert (result.usage.cpu_ms, result.usage.peak_memory_bytes) == (2.0, 4096)
    (call,) = world.agent.calls
    assert (call.op, call.content, call.timeout) == ("run_code", "print('hello')", 7)
    assert call.execution_id is None  # the gateway named it: nothing for the agent to hold
    assert world.records.rows == [(OWNER.user_id, ExecutionType.CODE, result.status, (6, 8))]
    assert Counter(world.events) == {"started": 1, "completed": 1}
    assert world.output == []  # a synchronous execution streams nothing


async def test_a_command_that_exits_non_zero_failed(world: World) -> None:
    async def script(call: Call) -> Outcome:
        return exited(3)

    world.agent.script = script
    request = ExecuteRequest(type=ExecutionType.COMMAND, content="exit 3")
    result = await world.run(request)
    assert ending(result) == (ExecutionStatus.FAILED, 3, EndedBy.EXIT)
    assert world.agent.calls[0].op == "run_command"


async def test_the_agents_timeout_is_the_executions(world: World) -> None:
    async def script(call: Call) -> Outcome:
        return Outcome("timeout", TIMEOUT_EXIT_CODE, "timeout", Usage(1000.0, 990.0, 4096))

    world.agent.script = script
    result = await world.run(code("while True: pass", timeout=1))
    assert ending(result) == (ExecutionStatus.TIMEOUT, TIMEOUT_EXIT_CODE, EndedBy.TIMEOUT)
    assert world.agent.calls[0].timeout == 1


async def test_an_execution_silent_past_its_idle_timeout_is_cancelled_and_times_out(
    world: World,
) -> None:
    async def script(call: Call) -> Outcome:
        await call.cancel.wait()  # set by the runner's idle watchdog, nothing else
        return cancelled()

    world.agent.script = script
    result = await world.run(code("input()", idle_timeout=0.01))
    assert ending(result) == (ExecutionStatus.TIMEOUT, TIMEOUT_EXIT_CODE, EndedBy.IDLE)
    assert Counter(world.events) == {"started": 1, "completed": 1}


async def test_an_unreachable_agent_is_forgotten_and_the_sandbox_not_running(
    world: World,
) -> None:
    async def script(call: Call) -> Outcome:
        raise AgentUnavailable("the agent connection was lost")

    world.agent.script = script
    with pytest.raises(ServiceError) as failed:
        await world.run(code("1"))
    assert failed.value.code is ErrorCode.SANDBOX_NOT_RUNNING
    assert world.reach.forgotten == [SANDBOX]
    assert Counter(world.events) == {"started": 1, "failed": 1}
    assert world.records.rows == []


async def test_another_tenant_cannot_run_in_the_sandbox(world: World) -> None:
    with pytest.raises(ServiceError) as refused:
        await world.run(code("1"), caller=OTHER)
    assert refused.value.code is ErrorCode.NOT_FOUND
    assert world.agent.calls == []


async def test_a_streamed_execution_sends_its_output_then_its_terminal_marker(
    world: World,
) -> None:
    async def script(call: Call) -> Outcome:
        await call.write("stdout", "1\n")
        await call.show({"data": {"text/plain": "2"}, "isMainResult": False, "truncated": False})
        await call.write("stderr", "3\n")
        return exited()

    world.agent.script = script
    await world.start(code("print(1)"))
    await world.runner.drain()
    assert [call.execution_id for call in world.agent.calls] == ["exec-1"]  # the client's
    kinds = [message.kind for message in world.output]
    assert kinds == ["started", "output", "display", "output", "ended"]
    assert [message.seq for message in world.output] == [1, 2, 3, 4, 5]
    assert [
        (message.stream, message.content) for message in world.output if message.kind == "output"
    ] == [("stdout", "1\n"), ("stderr", "3\n")]
    result = world.ended()
    assert ending(result) == (ExecutionStatus.COMPLETED, 0, EndedBy.EXIT)
    # The output and results went out as messages: the marker does not repeat them.
    assert (result.stdout, result.stderr, result.results) == ("", "", [])
    assert not result.output_truncated
    assert Counter(world.events) == {"started": 1, "completed": 1}


async def test_a_cancel_stops_a_streamed_execution_only_when_its_owner_sends_it(
    world: World,
) -> None:
    async def script(call: Call) -> Outcome:
        await call.write("stdout", "working\n")
        await call.cancel.wait()
        return cancelled()

    world.agent.script = script
    await world.start(code("import time; time.sleep(60)"))
    await world.agent.running.wait()
    (call,) = world.agent.calls
    await world.cancel(OTHER)  # heard and ignored: not the owner's execution
    assert not call.cancel.is_set()
    with pytest.raises(ServiceError) as conflict:  # the id is still taken meanwhile
        await world.run(code("1"))
    assert conflict.value.code is ErrorCode.CONFLICT
    await world.cancel(OWNER)
    async with asyncio.timeout(30):  # an execution the cancel missed fails here, not hangs
        await world.runner.drain()
    result = world.ended()
    assert ending(result) == (ExecutionStatus.CANCELLED, CANCELLED_EXIT_CODE, EndedBy.CANCELLED)
    assert Counter(world.events) == {"started": 1, "cancelled": 1}


async def test_a_streamed_execution_whose_end_cannot_be_stored_is_still_booked(
    world: World,
) -> None:
    """The terminal marker leaves before the bookkeeping (its client waits for it); a
    JetStream that refuses it must not cost the summary row or the terminal event."""
    world.stream.store_down = True
    await world.start(code("print(1)"))
    await world.runner.drain()
    assert not any(isinstance(message, EndedMarker) for message in world.output)
    assert [row[2] for row in world.records.rows] == [ExecutionStatus.COMPLETED]
    assert Counter(world.events) == {"started": 1, "completed": 1}


async def test_a_streamed_execution_the_agent_refuses_still_ends_with_an_error_marker(
    world: World,
) -> None:
    async def script(call: Call) -> Outcome:
        raise AgentRequestError("invalid_request", "workingDir /nope does not exist")

    world.agent.script = script
    await world.start(ExecuteRequest(type=ExecutionType.COMMAND, content="ls", working_dir="/nope"))
    await world.runner.drain()
    assert [message.kind for message in world.output] == ["started", "ended"]
    result = world.ended()
    assert (result.status, result.ended_by) == (ExecutionStatus.ERROR, EndedBy.ERROR)
    assert result.error is not None
    assert result.error.value == "workingDir /nope does not exist"
    assert world.reach.forgotten == []  # the agent answered: its connection is kept
    assert Counter(world.events) == {"started": 1, "failed": 1}
