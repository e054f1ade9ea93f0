"""A command sent with `Bus.request` reaches the subscriber declared from the same
descriptor, and its reply or error comes back typed: on FastStream's in-memory broker (as
unit tests run handlers), and answered by `CommandServer` on a real nats-server (as
services do), with every failure as its error envelope, the request id in the log
context, concurrency bounded per command, and a drain that answers what it took."""

import asyncio
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import structlog
from faststream.nats import NatsBroker, TestNatsBroker
from nats.aio.client import Client as NatsClient

from llmsafespace.contracts import (
    Caller,
    CancelExecution,
    ErrorCode,
    FileInfo,
    FileListing,
    ListFiles,
    Resources,
    Role,
    Sandbox,
    SandboxRef,
    SandboxStatus,
    SecurityLevel,
    ServiceError,
    commands,
)
from llmsafespace.servicekit import (
    BrokerConnection,
    Bus,
    Router,
    handles,
    hears,
    include_commands,
    middlewares,
)
from llmsafespace.servicekit.bus import REQUEST_ID_HEADER
from llmsafespace.servicekit.commands import CommandServer

CALLER = Caller(user_id="usr-aaaaaaaaaaaa", role=Role.USER)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _sandbox(sandbox_id: str) -> Sandbox:
    return Sandbox(
        id=sandbox_id,
        owner_id=CALLER.user_id,
        status=SandboxStatus.RUNNING,
        runtime="python:3.11",
        security_level=SecurityLevel.STANDARD,
        timeout=300,
        resources=Resources(),
        metadata={},
        created_at=NOW,
        expires_at=NOW,
    )


def _broker(cancelled: list[str]) -> NatsBroker:
    router = Router()

    @handles(router, commands.SANDBOX_GET)
    async def get(ref: SandboxRef) -> Sandbox:
        if ref.sandbox_id == "sb-missing000000":
            raise ServiceError(ErrorCode.NOT_FOUND, "sandbox sb-missing000000 not found")
        return _sandbox(ref.sandbox_id)

    @hears(router, commands.EXEC_CANCEL)
    async def cancel(command: CancelExecution) -> None:
        cancelled.append(command.execution_id)

    broker = NatsBroker(middlewares=middlewares(), logger=None)
    include_commands(broker, router)
    return broker


async def test_a_request_gets_the_typed_reply_of_its_command() -> None:
    broker = _broker([])
    async with TestNatsBroker(broker):
        bus = Bus(BrokerConnection(broker))
        ref = SandboxRef(caller=CALLER, sandbox_id="sb-aaaaaaaaaaaa")
        sandbox = await bus.request(commands.SANDBOX_GET, ref)
    assert isinstance(sandbox, Sandbox)
    assert sandbox.id == "sb-aaaaaaaaaaaa"


async def test_a_handlers_service_error_is_raised_to_the_caller() -> None:
    broker = _broker([])
    async with TestNatsBroker(broker):
        bus = Bus(BrokerConnection(broker))
        ref = SandboxRef(caller=CALLER, sandbox_id="sb-missing000000")
        with pytest.raises(ServiceError) as refused:
            await bus.request(commands.SANDBOX_GET, ref)
    assert refused.value.code is ErrorCode.NOT_FOUND


async def test_a_command_nobody_serves_is_unavailable() -> None:
    broker = _broker([])
    async with TestNatsBroker(broker):
        bus = Bus(BrokerConnection(broker))
        ref = SandboxRef(caller=CALLER, sandbox_id="sb-aaaaaaaaaaaa")
        with pytest.raises(ServiceError) as refused:
            await bus.request(commands.SANDBOX_TERMINATE, ref)
    assert refused.value.code is ErrorCode.SERVICE_UNAVAILABLE


async def test_a_broadcast_reaches_its_listener() -> None:
    cancelled: list[str] = []
    broker = _broker(cancelled)
    async with TestNatsBroker(broker):
        bus = Bus(BrokerConnection(broker))
        command = CancelExecution(
            caller=CALLER, sandbox_id="sb-aaaaaaaaaaaa", execution_id="exec-1"
        )
        await bus.broadcast(commands.EXEC_CANCEL, command)
    assert cancelled == ["exec-1"]


class Sandboxes:
    """A `SANDBOX_GET` handler that can be held at a gate, counting how many run."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.running = 0
        self.most = 0
        self.started: asyncio.Queue[str] = asyncio.Queue()  # a handler reached the gate
        self.request_ids: list[str | None] = []

    async def get(self, ref: SandboxRef) -> Sandbox:
        self.request_ids.append(structlog.contextvars.get_contextvars().get("request_id"))
        if ref.sandbox_id == "sb-missing000000":
            raise ServiceError(ErrorCode.NOT_FOUND, "sandbox sb-missing000000 not found")
        if ref.sandbox_id == "sb-broken0000000":
            raise RuntimeError("a bug")
        self.running += 1
        self.most = max(self.most, self.running)
        self.started.put_nowait(ref.sandbox_id)
        try:
            await self.gate.wait()
        finally:
            self.running -= 1
        return _sandbox(ref.sandbox_id)


async def _serve(
    connection: NatsClient, sandboxes: Sandboxes, max_workers: int | None
) -> CommandServer:
    router = Router()
    handles(router, commands.SANDBOX_GET, max_workers=max_workers)(sandboxes.get)
    server = CommandServer(connection)
    await server.start(router.answers)
    await connection.flush()
    return server


def _ref(sandbox_id: str) -> SandboxRef:
    return SandboxRef(caller=CALLER, sandbox_id=sandbox_id)


async def test_a_command_gets_its_typed_reply_and_every_failure_its_envelope(
    connection: NatsClient,
) -> None:
    sandboxes = Sandboxes()
    server = await _serve(connection, sandboxes, max_workers=4)
    bus = Bus(connection)
    sandbox = await bus.request(commands.SANDBOX_GET, _ref("sb-aaaaaaaaaaaa"))
    assert (type(sandbox), sandbox.id) == (Sandbox, "sb-aaaaaaaaaaaa")
    with pytest.raises(ServiceError) as missing:
        await bus.request(commands.SANDBOX_GET, _ref("sb-missing000000"))
    assert missing.value.code is ErrorCode.NOT_FOUND
    with pytest.raises(ServiceError) as broken:
        await bus.request(commands.SANDBOX_GET, _ref("sb-broken0000000"))
    assert (broken.value.code, broken.value.message) == (ErrorCode.INTERNAL_ERROR, "internal error")
    reply = await connection.request(commands.SANDBOX_GET.subject, b'{"sandboxId": 7}', timeout=5)
    assert b'"invalid_request"' in reply.data
    assert b"sandboxId" in reply.data
    await server.drain(timeout=5)


async def test_the_request_id_a_command_carries_is_in_its_handlers_log_context(
    connection: NatsClient,
) -> None:
    sandboxes = Sandboxes()
    server = await _serve(connection, sandboxes, max_workers=4)
    bus = Bus(connection)
    await bus.request(
        commands.SANDBOX_GET, _ref("sb-aaaaaaaaaaaa"), headers={REQUEST_ID_HEADER: "req-1"}
    )
    await bus.request(commands.SANDBOX_GET, _ref("sb-aaaaaaaaaaaa"))
    assert sandboxes.request_ids == ["req-1", None]  # not left behind for the next one
    await server.drain(timeout=5)


@pytest.mark.parametrize(("max_workers", "most"), [(None, 1), (3, 3)])
async def test_a_command_runs_at_most_max_workers_handlers_at_once(
    connection: NatsClient, max_workers: int | None, most: int
) -> None:
    sandboxes = Sandboxes()
    sandboxes.gate.clear()
    server = await _serve(connection, sandboxes, max_workers)
    bus = Bus(connection)
    requests = [
        asyncio.create_task(bus.request(commands.SANDBOX_GET, _ref(f"sb-aaaaaaaaaaa{n}")))
        for n in range(6)
    ]
    for _ in range(most):
        await asyncio.wait_for(sandboxes.started.get(), 10)
    await asyncio.sleep(0.1)  # a handler past the bound would have started by now
    assert sandboxes.most == most
    sandboxes.gate.set()
    answered = await asyncio.gather(*requests)
    assert sorted(sandbox.id for sandbox in answered) == [f"sb-aaaaaaaaaaa{n}" for n in range(6)]
    await server.drain(timeout=5)


async def test_a_drain_answers_the_requests_it_took_and_takes_no_more(
    connection: NatsClient,
) -> None:
    sandboxes = Sandboxes()
    sandboxes.gate.clear()
    server = await _serve(connection, sandboxes, max_workers=4)
    bus = Bus(connection)
    taken = asyncio.create_task(bus.request(commands.SANDBOX_GET, _ref("sb-aaaaaaaaaaaa")))
    await asyncio.wait_for(sandboxes.started.get(), 10)
    draining = asyncio.create_task(server.drain(timeout=30))
    await asyncio.sleep(0.1)
    assert not draining.done()  # it waits for the handler that runs
    with pytest.raises(ServiceError) as refused:  # no one takes a new request
        await bus.request(commands.SANDBOX_GET, _ref("sb-bbbbbbbbbbbb"), timeout=2)
    assert refused.value.code is ErrorCode.SERVICE_UNAVAILABLE
    sandboxes.gate.set()
    assert (await taken).id == "sb-aaaaaaaaaaaa"
    await draining


class OnePerUser:
    """An `admit` that lets each user have one request at a time."""

    def __init__(self) -> None:
        self.held: Counter[str] = Counter()

    def admit(self, ref: SandboxRef) -> Callable[[], None]:
        user = ref.caller.user_id
        if self.held[user]:
            raise ServiceError(ErrorCode.RATE_LIMITED, "one at a time", {"retryAfter": 1})
        self.held[user] += 1
        return lambda: self.held.subtract([user])


async def test_a_request_its_admit_refuses_is_answered_at_once_without_waiting_for_a_worker(
    connection: NatsClient,
) -> None:
    """Both workers are busy, one of them with user A's request: A's next one is refused
    at once, not queued behind the workers (where it would hold up everyone after it)."""
    sandboxes, shares = Sandboxes(), OnePerUser()
    sandboxes.gate.clear()
    router = Router()
    handles(router, commands.SANDBOX_GET, max_workers=2, admit=shares.admit)(sandboxes.get)
    server = CommandServer(connection)
    await server.start(router.answers)
    bus = Bus(connection)
    other = Caller(user_id="usr-bbbbbbbbbbbb", role=Role.USER)
    held = [
        asyncio.create_task(bus.request(commands.SANDBOX_GET, ref))
        for ref in (_ref("sb-aaaaaaaaaaaa"), SandboxRef(caller=other, sandbox_id="sb-bbbbbbbbbbbb"))
    ]
    for _ in held:
        await asyncio.wait_for(sandboxes.started.get(), 10)
    with pytest.raises(ServiceError) as refused:
        await bus.request(commands.SANDBOX_GET, _ref("sb-cccccccccccc"), timeout=2)
    assert (refused.value.code, refused.value.details) == (
        ErrorCode.RATE_LIMITED,
        {"retryAfter": 1},
    )
    sandboxes.gate.set()
    await asyncio.gather(*held)
    assert +shares.held == Counter()  # each answered request gave its share back
    assert (
        await bus.request(commands.SANDBOX_GET, _ref("sb-cccccccccccc"))
    ).id == "sb-cccccccccccc"
    await server.drain(timeout=5)


async def test_on_the_test_broker_a_request_its_admit_refuses_is_refused_too() -> None:
    shares = OnePerUser()
    router = Router()
    handles(router, commands.SANDBOX_GET, max_workers=2, admit=shares.admit)(Sandboxes().get)
    broker = NatsBroker(middlewares=middlewares(), logger=None)
    include_commands(broker, router)
    async with TestNatsBroker(broker):
        bus = Bus(BrokerConnection(broker))
        assert (await bus.request(commands.SANDBOX_GET, _ref("sb-aaaaaaaaaaaa"))).id
        assert +shares.held == Counter()
        shares.held[CALLER.user_id] = 1  # as if one of A's requests were running
        with pytest.raises(ServiceError) as refused:
            await bus.request(commands.SANDBOX_GET, _ref("sb-aaaaaaaaaaaa"))
    assert refused.value.code is ErrorCode.RATE_LIMITED


async def test_a_reply_larger_than_the_bus_carries_is_answered_with_an_error_at_once(
    connection: NatsClient,
) -> None:
    """nats-py refuses to publish it: the caller used to wait out its timeout (a 504)."""
    entry = FileInfo(
        path="/workspace/" + "a" * 200,
        name="a" * 200,
        size=0,
        is_directory=False,
        modified_at=NOW,
        created_at=NOW,
        mode="0644",
    )

    async def huge(command: ListFiles) -> FileListing:
        return FileListing(path=command.path, files=[entry] * 5000)

    router = Router()
    handles(router, commands.EXEC_FILES_LIST)(huge)
    server = CommandServer(connection)
    await server.start(router.answers)
    command = ListFiles(caller=CALLER, sandbox_id="sb-aaaaaaaaaaaa", path="/workspace")
    with pytest.raises(ServiceError) as refused:
        await Bus(connection).request(commands.EXEC_FILES_LIST, command, timeout=5)
    assert refused.value.code is ErrorCode.INTERNAL_ERROR
    assert "larger than the bus carries" in refused.value.message
    await server.drain(timeout=5)
