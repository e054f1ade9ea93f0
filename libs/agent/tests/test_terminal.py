"""The agent's PTY shell, run in-process on the host (no sandbox): size checks, resize,
input, hang-up."""

from __future__ import annotations

import os
import queue
import threading

import pytest

from llmsafespace.agent.cancel import Cancel
from llmsafespace.agent.outcome import Outcome
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


def test_the_shell_sees_its_size_and_input_and_is_hung_up_by_cancel(tmp_path) -> None:
    terminal = Terminal(90, 20)
    stdin: queue.SimpleQueue[tuple[str, bool]] = queue.SimpleQueue()
    cancel = Cancel()
    screen: list[str] = []
    changed = threading.Condition()

    def sink(_: str, text: str) -> None:
        with changed:
            screen.append(text)
            changed.notify_all()

    def until(text: str) -> None:
        with changed:
            assert changed.wait_for(lambda: text in "".join(screen), timeout=WAIT)

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PS1": "$ "}
    outcomes: list[Outcome] = []
    running = threading.Thread(
        target=lambda: outcomes.append(
            terminal.run(
                env=env, cwd=str(tmp_path), stdin=stdin, time_limit=WAIT, sink=sink, cancel=cancel
            )
        )
    )
    running.start()
    stdin.put(("stty size; echo one-$((0 + 1))\n", False))
    until("one-1")
    assert "20 90" in "".join(screen)
    terminal.resize(120, 40)
    stdin.put(("stty size; tty; echo two-$((1 + 1))\n", False))
    until("two-2")
    assert "40 120" in "".join(screen)
    assert "/dev/pts/" in "".join(screen)
    cancel.set()
    running.join()
    (outcome,) = outcomes
    assert (outcome.status, outcome.ended_by) == ("cancelled", "cancelled")


def test_input_the_shell_has_not_read_yet_waits_for_it(tmp_path) -> None:
    """Far more input than the tty buffers (a big paste) is written as the shell reads
    it: none is lost, and input after it still arrives. The PTY master is non-blocking
    (its output reader shares it), so a full tty must be waited for, not given up on."""
    terminal = Terminal(80, 24)
    stdin: queue.SimpleQueue[tuple[str, bool]] = queue.SimpleQueue()
    cancel = Cancel()
    screen: list[str] = []
    changed = threading.Condition()

    def sink(_: str, text: str) -> None:
        with changed:
            screen.append(text)
            changed.notify_all()

    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PS1": "$ "}
    running = threading.Thread(
        target=terminal.run,
        kwargs={
            "env": env,
            "cwd": str(tmp_path),
            "stdin": stdin,
            "time_limit": WAIT,
            "sink": sink,
            "cancel": cancel,
        },
    )
    running.start()
    pasted = "".join(f"{n:05} {'x' * 58}\n" for n in range(2000))  # 128 KB
    stdin.put(("stty -echo; cat > pasted.txt; echo done-$((2 + 2))\n", False))
    stdin.put((pasted, False))
    stdin.put(("\x04", False))  # end of file for cat, once it has read the rest
    with changed:
        arrived = changed.wait_for(lambda: "done-4" in "".join(screen), timeout=WAIT)
    cancel.set()
    running.join()
    assert arrived, "input after the paste never reached the shell"
    assert (tmp_path / "pasted.txt").read_text() == pasted
