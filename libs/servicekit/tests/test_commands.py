"""A command sent with `Bus.request` reaches the subscriber declared from the same
descriptor, and its reply or error comes back typed (FastStream's in-memory broker)."""

from datetime import UTC, datetime

import pytest
from faststream.nats import NatsBroker, TestNatsBroker

from llmsafespace.contracts import (
    Caller,
    CancelExecution,
    ErrorCode,
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
