"""One connection per sandbox: callers of the same sandbox share one connect, and a
sandbox whose agent is slow to answer delays nobody else's; a resolve waits long, since
it may resume the sandbox first."""

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest

from llmsafespace.contracts import (
    Caller,
    ErrorCode,
    ResolvedSandbox,
    Role,
    SandboxStatus,
    ServiceError,
)
from llmsafespace.exec_svc import agents
from llmsafespace.exec_svc.agent_errors import agent_failures
from llmsafespace.exec_svc.agents import Agents
from llmsafespace.runtime import AgentUnavailable
from llmsafespace.servicekit import Bus

CALLER = Caller(user_id="usr-aaaaaaaaaaaa", role=Role.USER)


class ResolvingBus:
    """Answers cmd.sandbox.resolve with an endpoint named after the sandbox."""

    async def request(self, command: Any, payload: Any, **_: Any) -> ResolvedSandbox:
        return ResolvedSandbox(
            sandbox_id=payload.sandbox_id,
            owner_id=CALLER.user_id,
            status=SandboxStatus.RUNNING,
            endpoint=f"tcp://{payload.sandbox_id}:1",
            token="t",
        )


class FakeClient:
    closed = False

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    async def close(self) -> None:
        self.closed = True


class SlowAgents:
    """AgentClient.connect stand-in: the slow sandbox's agent answers when released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.connects: list[str] = []

    async def connect(self, endpoint: str, token: str) -> FakeClient:
        self.connects.append(endpoint)
        if "slow" in endpoint:
            self.entered.set()
            await self.release.wait()
        return FakeClient(endpoint)


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> SlowAgents:
    fake = SlowAgents()
    monkeypatch.setattr(agents.AgentClient, "connect", fake.connect)
    return fake


async def test_a_slow_agent_delays_only_its_own_sandbox(slow: SlowAgents) -> None:
    reach = Agents(ResolvingBus(), ttl=60, resolve_timeout=60)  # type: ignore[arg-type]
    first = asyncio.create_task(reach.client(CALLER, "sb-slowslowslow"))
    await slow.entered.wait()
    # Under one lock for every first connect, this waited for the slow agent.
    _, other = await asyncio.wait_for(reach.client(CALLER, "sb-quickquickqu"), 10)
    assert isinstance(other, FakeClient)
    assert other.endpoint == "tcp://sb-quickquickqu:1"
    assert not first.done()
    slow.release.set()
    await first


async def test_callers_of_one_sandbox_share_one_connect(slow: SlowAgents) -> None:
    reach = Agents(ResolvingBus(), ttl=60, resolve_timeout=60)  # type: ignore[arg-type]
    waiting = [asyncio.create_task(reach.client(CALLER, "sb-slowslowslow")) for _ in range(3)]
    await slow.entered.wait()
    slow.release.set()
    clients = {id(client) for _, client in await asyncio.gather(*waiting)}
    assert len(clients) == 1
    assert slow.connects == ["tcp://sb-slowslowslow:1"]
    _, again = await reach.client(CALLER, "sb-slowslowslow")
    assert id(again) in clients  # kept, not reconnected
    assert len(slow.connects) == 1


@dataclass
class Reply:
    data: bytes


class RecordingConnection:
    """The bus's `Connection`: resolves every sandbox, recording the timeout it waits."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    @property
    def is_connected(self) -> bool:
        return True

    async def request(
        self, subject: str, payload: bytes, *, timeout: float, headers: dict[str, str] | None
    ) -> Reply:
        self.timeouts.append(timeout)
        resolved = ResolvedSandbox(
            sandbox_id=json.loads(payload)["sandboxId"],
            owner_id=CALLER.user_id,
            status=SandboxStatus.RUNNING,
            endpoint="tcp://resumed:1",
            token="t",
        )
        return Reply(resolved.model_dump_json(by_alias=True).encode())

    async def publish(self, subject: str, payload: bytes) -> None:
        raise AssertionError("a resolve publishes nothing")


async def test_a_resolve_waits_the_resolve_timeout_not_the_bus_default(
    slow: SlowAgents,
) -> None:
    """An autoResume sandbox is resumed inside the resolve (on Kubernetes a restore of
    its workspace), far longer than the bus's default 10 s."""
    connection = RecordingConnection()
    reach = Agents(Bus(connection, timeout=10), ttl=0, resolve_timeout=1800)
    resolved, _ = await reach.client(CALLER, "sb-autoresumeaa")
    assert resolved.sandbox_id == "sb-autoresumeaa"
    assert connection.timeouts == [1800]


class RefusingBus:
    """Fails every request: a prepared sandbox's first call must not resolve."""

    async def request(self, command: Any, payload: Any, **_: Any) -> ResolvedSandbox:
        raise AssertionError(f"unexpected {command.subject}")


def prepared(sandbox_id: str) -> ResolvedSandbox:
    return ResolvedSandbox(
        sandbox_id=sandbox_id,
        owner_id=CALLER.user_id,
        status=SandboxStatus.RUNNING,
        endpoint=f"tcp://{sandbox_id}:1",
        token="t",
    )


async def test_a_prepared_sandbox_is_connected_before_its_first_call_which_resolves_nothing(
    slow: SlowAgents,
) -> None:
    reach = Agents(RefusingBus(), ttl=60, resolve_timeout=60)  # type: ignore[arg-type]
    reach.prepare(prepared("sb-slowslowslow"))
    await slow.entered.wait()  # connecting already, with no call made
    first = asyncio.create_task(reach.client(CALLER, "sb-slowslowslow"))
    slow.release.set()
    resolved, client = await first
    assert resolved.endpoint == client.endpoint == "tcp://sb-slowslowslow:1"
    assert slow.connects == ["tcp://sb-slowslowslow:1"]  # the call shared the connect


async def test_a_prepared_sandbox_is_still_only_its_owners(slow: SlowAgents) -> None:
    reach = Agents(RefusingBus(), ttl=60, resolve_timeout=60)  # type: ignore[arg-type]
    reach.prepare(prepared("sb-quickquickqu"))
    stranger = Caller(user_id="usr-bbbbbbbbbbbb", role=Role.USER)
    with pytest.raises(ServiceError) as refused:
        await reach.client(stranger, "sb-quickquickqu")
    assert refused.value.code is ErrorCode.NOT_FOUND


class CountingBus(ResolvingBus):
    def __init__(self) -> None:
        self.resolves = 0

    async def request(self, command: Any, payload: Any, **_: Any) -> ResolvedSandbox:
        self.resolves += 1
        return await super().request(command, payload)


async def test_a_paused_sandbox_keeps_its_connection_resolves_again_and_fails_as_paused(
    slow: SlowAgents,
) -> None:
    bus = CountingBus()
    reach = Agents(bus, ttl=60, resolve_timeout=60)  # type: ignore[arg-type]
    _, client = await reach.client(CALLER, "sb-pausedpaused")
    reach.pausing("sb-pausedpaused", True)
    _, same = await reach.client(CALLER, "sb-pausedpaused")
    assert same is client  # the executions running in it go on after the resume
    assert (bus.resolves, slow.connects) == (2, ["tcp://sb-pausedpaused:1"])
    with (
        pytest.raises(ServiceError) as failed,
        agent_failures(reach, "sb-pausedpaused", during="the execution"),
    ):
        raise AgentUnavailable("the agent did not answer within 40 s")
    assert failed.value.code is ErrorCode.SANDBOX_PAUSED
    assert failed.value.message == "sandbox sb-pausedpaused was paused during the execution"
    reach.pausing("sb-running12345", False)
    with pytest.raises(ServiceError) as lost, agent_failures(reach, "sb-running12345"):
        raise AgentUnavailable("the agent connection was lost")
    assert lost.value.code is ErrorCode.SANDBOX_NOT_RUNNING
