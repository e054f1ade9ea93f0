"""A terminal's life in exec-svc, without servers: its scrollback is bounded, and one
nobody is attached to ends once its grace period passes with no contact."""

import asyncio
import json
from typing import Any

from llmsafespace.contracts import Caller, Role
from llmsafespace.contracts.terminal import OpenTerminal
from llmsafespace.exec_svc.terminals import Terminal, Terminals
from llmsafespace.runtime import AgentResult

CALLER = Caller(user_id="usr-aaaaaaaaaaaa", role=Role.USER)
SANDBOX = "sb-aaaaaaaaaaaa"
TERMINAL = "term-aaaaaaaaaaaa"


def test_the_scrollback_keeps_the_newest_output_within_its_bound() -> None:
    terminal = Terminal(CALLER.user_id, SANDBOX, TERMINAL, scrollback_chars=10)
    seqs = [terminal.record(chunk) for chunk in ("aaaa", "bbbb", "cccc", "dddd")]
    assert seqs == [1, 2, 3, 4]
    assert "".join(terminal.chunks) == "ccccdddd"
    assert terminal.held == 8
    terminal.record("x" * 50)  # one chunk larger than the bound is kept whole
    assert list(terminal.chunks) == ["x" * 50]


class Shell:
    """The agent's side: a shell that runs until it is hung up."""

    async def terminal(self, *, cancel: asyncio.Event, **_: Any) -> AgentResult:
        await cancel.wait()
        return AgentResult(
            status="completed",
            exit_code=129,
            stdout="",
            stderr="",
            result=None,
            error=None,
            ended_by="exit",
            wall_ms=0.0,
            cpu_ms=0.0,
            peak_memory_bytes=None,
        )


class Reach:
    async def client(self, caller: Caller, sandbox_id: str) -> tuple[Any, Shell]:
        class Resolved:
            owner_id = caller.user_id

        return Resolved(), Shell()


class Subscription:
    async def unsubscribe(self) -> None:
        return None


class Connection:
    """The bus as the terminal uses it: subscribe for control, publish its output."""

    def __init__(self) -> None:
        self.published: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def subscribe(self, subject: str, cb: Any) -> Subscription:
        return Subscription()

    async def publish(self, subject: str, data: bytes) -> None:
        self.published.put_nowait((subject, json.loads(data)))


async def test_a_terminal_nobody_attaches_to_ends_after_its_grace() -> None:
    connection = Connection()
    terminals = Terminals(Reach(), connection, grace=0.2, scrollback_chars=1024)  # type: ignore[arg-type]
    await terminals.open(OpenTerminal(caller=CALLER, sandbox_id=SANDBOX, terminal_id=TERMINAL))
    async with asyncio.timeout(30):  # a terminal never reaped fails here, not a slow one
        subject, message = await connection.published.get()
    assert message == {"type": "exit", "exitCode": 129}
    assert TERMINAL in subject
    await terminals.drain()
