"""The agent's PTY shell, run in-process on the host (no sandbox): size checks, resize,
input, hang-up."""

from __future__ import annotations

import asyncio
import os

import pytest

from llmsafespace.agent.terminal import Terminal, TerminalError

WAIT = 30.0  # a bound on waiting for an expected screen (a hang fails, never a slow run)


@pytest.mark.parametrize(
    ("cols", "rows"), [(0, 24), (80, 0), (100_000, 24), (True, 24), ("80", 24)]
)
def test_a_size_outside_1_to_1000_is_refused(cols: object, rows: object) -> None:
    with pytest.raises(TerminalError):
        Terminal(cols, rows)  # type: ignore[arg-type]
    terminal = Terminal(80, 24)
    with pytest.raises(TerminalError):
        terminal.resize(cols, rows)


async def test_the_shell_sees_its_size_and_input_and_is_hung_up_by_cancel(tmp_path) -> None:
    terminal = Terminal(90, 20)
    stdin: asyncio.Queue[tuple[str, bool]] = asyncio.Queue()
    cancel = asyncio.Event()
    screen: list[str] = []
    changed = asyncio.Event()

    def sink(_: str, text: str) -> None:
        screen.append(text)
        changed.set()

    async def until(text: str) -> None:
        async with asyncio.timeout(WAIT):
            while text not in "".join(screen):
                changed.clear()
                await changed.wait()

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PS1": "$ "}
    running = asyncio.create_task(
        terminal.run(
            env=env, cwd=str(tmp_path), stdin=stdin, time_limit=WAIT, sink=sink, cancel=cancel
        )
    )
    stdin.put_nowait(("stty size; echo one-$((0 + 1))\n", False))
    await until("one-1")
    assert "20 90" in "".join(screen)
    terminal.resize(120, 40)
    stdin.put_nowait(("stty size; tty; echo two-$((1 + 1))\n", False))
    await until("two-2")
    assert "40 120" in "".join(screen)
    assert "/dev/pts/" in "".join(screen)
    cancel.set()
    outcome = await running
    assert (outcome.status, outcome.ended_by) == ("cancelled", "cancelled")
