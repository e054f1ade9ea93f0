"""The persistent interpreter: what a cell whose interpreter ends under it reports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmsafespace.agent.cancel import Cancel
from llmsafespace.agent.frames import Outcome
from llmsafespace.agent.interpreter import Interpreter


@pytest.fixture
def interpreter(tmp_path: Path) -> Iterator[Interpreter]:
    interpreter = Interpreter(str(tmp_path), {"PATH": "/usr/bin:/bin"})
    try:
        yield interpreter
    finally:
        interpreter.close()


def run(interpreter: Interpreter, code: str) -> tuple[Outcome, str]:
    """The cell's outcome and its stderr."""
    stderr: list[str] = []

    def sink(stream: str, text: str) -> None:
        if stream == "stderr":
            stderr.append(text)

    outcome = interpreter.run(code, time_limit=30, sink=sink, cancel=Cancel())
    return outcome, "".join(stderr)


@pytest.mark.parametrize(
    ("code", "status", "exit_code", "ended_by", "how"),
    [
        ("import os; os._exit(0)", "completed", 0, "exit", "exited with code 0"),
        ("import os; os._exit(3)", "failed", 3, "exit", "exited with code 3"),
        (
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
            "failed",
            137,
            "signal",
            "was killed by signal 9 (Killed)",
        ),
    ],
)
def test_a_cell_whose_interpreter_ends_says_so_and_the_state_is_gone(
    interpreter: Interpreter, code: str, status: str, exit_code: int, ended_by: str, how: str
) -> None:
    run(interpreter, "y = 5")
    ended, stderr = run(interpreter, code)
    assert (ended.status, ended.exit_code, ended.ended_by) == (status, exit_code, ended_by)
    assert stderr == f"\n[agent] the interpreter {how}; its state is lost\n"
    after, stderr = run(interpreter, "y")
    assert after.error is not None
    assert after.error["name"] == "NameError"


def test_a_cells_env_and_working_directory_are_its_own(
    interpreter: Interpreter, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = "import os; print(os.environ.get('GREETING'), os.environ.get('PATH'), os.getcwd())"
    output: list[str] = []

    def sink(stream: str, text: str) -> None:
        output.append(text)

    shown = interpreter.run(
        probe,
        time_limit=30,
        sink=sink,
        cancel=Cancel(),
        env={"GREETING": "hello", "PATH": "/opt/bin"},
        cwd=str(elsewhere),
    )
    assert shown.status == "completed"
    after = interpreter.run(probe, time_limit=30, sink=sink, cancel=Cancel())
    assert after.status == "completed"
    assert output == [f"hello /opt/bin {elsewhere}\n", f"None /usr/bin:/bin {tmp_path}\n"]


def test_a_cell_may_await_at_its_top_level_on_a_loop_that_lasts(
    interpreter: Interpreter,
) -> None:
    """As in IPython: a task one cell starts is still there for the next to await; an
    error raised in an awaited coroutine has the user's frames only."""
    started, _ = run(
        interpreter,
        "import asyncio\nasync def later(x):\n    await asyncio.sleep(0.01)\n    return x\n"
        "task = asyncio.get_running_loop().create_task(later(41))\nawait asyncio.sleep(0)",
    )
    assert started.status == "completed", started
    awaited, _ = run(interpreter, "(await task) + 1")
    assert (awaited.status, awaited.result) == ("completed", "42")
    failed, _ = run(interpreter, "async def boom():\n    raise ValueError('no')\nawait boom()")
    assert failed.status == "failed"
    assert failed.error is not None
    traceback = failed.error["traceback"]
    assert traceback.startswith('Traceback (most recent call last):\n  File "<cell-3>"'), traceback
    assert "asyncio" not in traceback, traceback
    assert "worker.py" not in traceback, traceback
    plain, _ = run(interpreter, "1 / 0")
    assert plain.error is not None
    assert "worker.py" not in plain.error["traceback"], plain.error


def test_what_a_thread_prints_between_cells_comes_with_the_next(
    interpreter: Interpreter, tmp_path: Path
) -> None:
    printed = tmp_path / "printed"
    output: list[str] = []

    def sink(stream: str, text: str) -> None:
        output.append(text)

    started = interpreter.run(
        "import threading, time\n"
        "def later():\n"
        "    time.sleep(0.1)\n"
        "    print('between cells', flush=True)\n"
        f"    open({str(printed)!r}, 'w').close()\n"
        "threading.Thread(target=later).start()",
        time_limit=30,
        sink=sink,
        cancel=Cancel(),
    )
    assert started.status == "completed"
    deadline = time.monotonic() + 30
    while not printed.exists():  # the thread has written, with no cell running
        assert time.monotonic() < deadline, "the thread did not print"
        time.sleep(0.01)
    interpreter.run("print('next')", time_limit=30, sink=sink, cancel=Cancel())
    assert "".join(output) == "between cells\nnext\n"
