"""One connection per sandbox: callers of the same sandbox share one connect, and a
sandbox whose agent is slow to answer delays nobody else's."""

import asyncio
from typing import Any

import pytest

from llmsafespace.contracts import Caller, ResolvedSandbox, Role, SandboxStatus
from llmsafespace.exec_svc import agents
from llmsafespace.exec_svc.agents import Agents

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
    reach = Agents(ResolvingBus(), ttl=60)  # type: ignore[arg-type]
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
    reach = Agents(ResolvingBus(), ttl=60)  # type: ignore[arg-type]
    waiting = [asyncio.create_task(reach.client(CALLER, "sb-slowslowslow")) for _ in range(3)]
    await slow.entered.wait()
    slow.release.set()
    clients = {id(client) for _, client in await asyncio.gather(*waiting)}
    assert len(clients) == 1
    assert slow.connects == ["tcp://sb-slowslowslow:1"]
    _, again = await reach.client(CALLER, "sb-slowslowslow")
    assert id(again) in clients  # kept, not reconnected
    assert len(slow.connects) == 1
