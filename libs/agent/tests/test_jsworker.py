"""run_code in JavaScript: the node worker keeps its context, reports errors, stops on time."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmsafespace.agent import jsworker
from llmsafespace.agent.cancel import Cancel
from llmsafespace.agent.interpreter import Interpreter
from llmsafespace.agent.outcome import Outcome

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None, reason="host feature: node is not installed"
)


@pytest.fixture
def interpreter(tmp_path: Path) -> Iterator[Interpreter]:
    kernel = Interpreter(str(tmp_path), dict(os.environ), None, jsworker.command())
    yield kernel
    kernel.close()


def _run(kernel: Interpreter, code: str, output: list[str], limit: float = 10) -> Outcome:
    return kernel.run(
        code, time_limit=limit, sink=lambda _, text: output.append(text), cancel=Cancel()
    )


def test_declarations_persist_and_the_completion_value_is_the_result(
    interpreter: Interpreter,
) -> None:
    output: list[str] = []
    first = _run(interpreter, "var a = 40; let b = 2; function f() { return a + b }", output)
    assert first.status == "completed"
    assert first.result is None
    shown = _run(interpreter, "console.log('sum', f()); ({sum: f()})", output)
    assert shown.result == "{ sum: 42 }"
    assert output == ["sum 42\n"]
    awaited = _run(interpreter, "new Promise((done) => setTimeout(() => done(b), 10))", [])
    assert awaited.result == "2"


def test_a_thrown_error_reports_its_name_message_and_stack(
    interpreter: Interpreter,
) -> None:
    failed = _run(interpreter, "undefinedFunction()", [])
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error["name"] == "ReferenceError"
    assert failed.error["value"] == "undefinedFunction is not defined"
    assert "<cell-1>" in failed.error["traceback"]
    thrown = _run(interpreter, "throw 'plain'", [])
    assert thrown.error is not None
    assert thrown.error["value"] == "'plain'"


def test_a_cell_past_its_time_limit_is_interrupted_and_the_context_kept(
    interpreter: Interpreter,
) -> None:
    _run(interpreter, "var kept = 'yes'", [])
    output: list[str] = []
    stopped = _run(interpreter, "while (true) {}", output, limit=0.5)
    assert stopped.status == "timeout"
    assert output == []  # interrupted, not restarted (a restart says so on stderr)
    after = _run(interpreter, "kept", [])
    assert after.result == "'yes'"


def test_a_cell_may_await_at_its_top_level_and_keep_what_it_declares(
    interpreter: Interpreter,
) -> None:
    cells = [
        ("const a = await Promise.resolve(40);\nlet {b} = await {b: 2};\na + b", "42"),
        ("a * b", "80"),  # top-level declarations outlive the cell
        ("async function half(n) { return n / 2 }\nclass K {}\n(await half(a))", "20"),
        ("[typeof half, typeof K]", "[ 'function', 'function' ]"),
        ("for (var i = 0; i < 3; i++) { var last = await i }\n[i, last]", "[ 3, 2 ]"),
        ("const inner = async () => { const hidden = await 1; return hidden }; await inner()", "1"),
        ("typeof hidden", "'undefined'"),  # a nested function's own stay its own
        ("let nothing = await 0", None),  # no expression last: no value
    ]
    for code, result in cells:
        outcome = _run(interpreter, code, [])
        assert (outcome.status, outcome.result) == ("completed", result), code
    failed = _run(interpreter, "await 1\nthrow new RangeError('late')", [])
    assert failed.error is not None
    assert (failed.error["name"], failed.error["value"]) == ("RangeError", "late")
    assert failed.error["traceback"].splitlines()[1:] == ["    at <cell-9>:2:7"], "its own"
    broken = _run(interpreter, "await 1 +", [])
    assert broken.error is not None
    assert broken.error["name"] == "SyntaxError"


def test_a_cell_awaiting_past_its_time_limit_is_interrupted_and_the_context_kept(
    interpreter: Interpreter,
) -> None:
    _run(interpreter, "var kept = 'yes'", [])
    output: list[str] = []
    stopped = _run(interpreter, "await new Promise(() => {})", output, limit=0.5)
    assert stopped.status == "timeout"
    assert output == []  # interrupted, not restarted (a restart says so on stderr)
    assert _run(interpreter, "kept", []).result == "'yes'"


def test_a_cells_env_and_working_directory_are_its_own(
    interpreter: Interpreter, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = "console.log(process.env.GREETING, process.cwd())"
    output: list[str] = []
    shown = interpreter.run(
        probe,
        time_limit=10,
        sink=lambda _, text: output.append(text),
        cancel=Cancel(),
        env={"GREETING": "hello"},
        cwd=str(elsewhere),
    )
    assert shown.status == "completed"
    assert _run(interpreter, probe, output).status == "completed"
    assert output == [f"hello {elsewhere}\n", f"undefined {tmp_path}\n"]


def test_the_completion_value_is_also_the_main_result_bundle(interpreter: Interpreter) -> None:
    """As Python's: `results` has it, after the output written before it."""
    events: list[object] = []
    shown = interpreter.run(
        "console.log('first'); ({answer: 42})",
        time_limit=10,
        sink=lambda _, text: events.append(text),
        cancel=Cancel(),
        display=events.append,
    )
    assert shown.result == "{ answer: 42 }"
    assert events == [
        "first\n",
        {"data": {"text/plain": "{ answer: 42 }"}, "isMainResult": True, "truncated": False},
    ]
    long = interpreter.run(
        "Array.from({length: 90}, () => 'x'.repeat(5000))",  # inspect: ~450 KB
        time_limit=10,
        sink=lambda *_: None,
        cancel=Cancel(),
    )
    assert long.result is not None
    assert long.result.endswith("[truncated: the result exceeded the display size limit]")
    assert len(long.result.encode()) < 257 * 1024
    nothing = interpreter.run("undefined", time_limit=10, sink=lambda *_: None, cancel=Cancel())
    assert nothing.result is None
