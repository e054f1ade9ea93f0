"""Code and commands run in a real sandbox through the agent client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from llmsafespace.runtime import AgentClient, AgentUnavailable, Handle, RuntimeSpec
from llmsafespace.runtime.local import LocalDriver


@pytest.fixture(scope="module")
async def handle(driver: LocalDriver) -> AsyncIterator[Handle]:
    handle = await driver.create(RuntimeSpec(runtime_id="exec"))
    yield handle
    await driver.destroy("exec")


@pytest.fixture
async def client(handle: Handle) -> AsyncIterator[AgentClient]:
    client = await AgentClient.connect(handle.endpoint, handle.token)
    yield client
    await client.close()


async def test_variables_survive_between_run_code_calls(client: AgentClient) -> None:
    await client.run_code("x = 41", timeout=10)
    result = await client.run_code("print(x + 1)", timeout=10)
    assert result.stdout == "42\n"
    assert result.status == "completed"


async def test_a_trailing_expression_is_returned_not_printed(client: AgentClient) -> None:
    result = await client.run_code("y = 2\ny * 21", timeout=10)
    assert result.result == "42"
    assert result.stdout == ""


async def test_rich_results_arrive_as_displayed_and_come_with_the_result(
    client: AgentClient,
) -> None:
    shown: list[dict[str, object]] = []

    async def on_display(bundle: dict[str, object]) -> None:
        shown.append(bundle)

    code = "display('a', 'b')\n3"
    result = await client.run_code(code, timeout=10, on_display=on_display)
    assert [bundle["data"] for bundle in shown] == [
        {"text/plain": "'a'"},
        {"text/plain": "'b'"},
        {"text/plain": "3"},
    ]
    assert [bundle["isMainResult"] for bundle in shown] == [False, False, True]
    assert list(result.results) == shown
    assert result.result == "3"


async def test_the_agents_matplotlib_backend_is_importable_by_user_code(
    client: AgentClient,
) -> None:
    code = "import importlib.util\nimportlib.util.find_spec('llmsafespace.agent.mplbackend')"
    result = await client.run_code(code, timeout=10)
    assert result.result is not None
    assert result.result.startswith("ModuleSpec(name='llmsafespace.agent.mplbackend'")


async def test_an_exception_fails_with_name_value_and_user_traceback(client: AgentClient) -> None:
    result = await client.run_code("def f():\n    raise ValueError('bad')\nf()", timeout=10)
    assert (result.status, result.exit_code) == ("failed", 1)
    assert result.error is not None
    assert result.error["name"] == "ValueError"
    assert result.error["value"] == "bad"
    assert "raise ValueError('bad')" in result.error["traceback"]
    assert "worker.py" not in result.error["traceback"]


async def test_user_code_cannot_read_the_agents_memory_where_its_token_is(
    client: AgentClient,
) -> None:
    # The worker is the agent's child; same uid, so only "not dumpable" keeps it out.
    code = (
        "import os\n"
        "try:\n"
        "    open(f'/proc/{os.getppid()}/mem', 'rb').close()\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__)\n"
        "open('/proc/self/mem', 'rb').close()  # its own memory stays open to it"
    )
    result = await client.run_code(code, timeout=10)
    assert (result.status, result.stdout) == ("completed", "PermissionError\n")


async def test_a_command_reports_its_exit_code(client: AgentClient) -> None:
    result = await client.run_command("echo out; echo err >&2; exit 3", timeout=10)
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert result.ended_by == "exit"


async def test_a_busy_loop_times_out_and_the_next_call_works(client: AgentClient) -> None:
    await client.run_code("kept = 'yes'", timeout=10)
    result = await client.run_code("print('before', flush=True)\nwhile True: pass", timeout=1)
    assert (result.status, result.exit_code, result.ended_by) == ("timeout", 124, "timeout")
    assert result.stdout == "before\n"
    assert (await client.run_code("kept", timeout=10)).result == "'yes'"


async def test_a_cell_ignoring_sigint_is_killed_and_a_fresh_interpreter_answers(
    client: AgentClient,
) -> None:
    code = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass"
    result = await client.run_code(code, timeout=1)
    assert (result.status, result.exit_code) == ("timeout", 124)
    assert "state is lost" in result.stderr
    after = await client.run_code("'kept' in globals()", timeout=10)
    assert after.result == "False"


async def test_output_arrives_in_order_before_the_result_including_subprocesses(
    client: AgentClient,
) -> None:
    seen: list[tuple[str, str]] = []

    async def on_output(stream: str, text: str) -> None:
        seen.append((stream, text))

    code = "import subprocess\nprint('one')\nsubprocess.run(['echo', 'two'])\nprint('three')\n1"
    result = await client.run_code(code, timeout=10, on_output=on_output)
    assert result.stdout == "one\ntwo\nthree\n"
    assert "".join(text for _, text in seen) == result.stdout
    assert result.result == "1"


async def test_two_commands_run_concurrently(client: AgentClient) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    first, second = await asyncio.gather(
        client.run_command("sleep 1; echo a", timeout=10),
        client.run_command("sleep 1; echo b", timeout=10),
    )
    assert (first.stdout, second.stdout) == ("a\n", "b\n")
    assert loop.time() - started < 1.9


async def test_a_command_timeout_kills_its_process_group(client: AgentClient) -> None:
    result = await client.run_command("sleep 30 & sleep 30", timeout=1)
    assert (result.status, result.exit_code) == ("timeout", 124)
    assert (await client.run_command("pgrep -x sleep || true", timeout=10)).stdout == ""


async def test_a_wrong_token_is_rejected(handle: Handle) -> None:
    with pytest.raises(AgentUnavailable):
        await AgentClient.connect(handle.endpoint, "not-the-token")


async def test_set_env_reaches_the_live_interpreter_and_later_commands(
    client: AgentClient,
) -> None:
    await client.run_code("kept = 'state'", timeout=10)
    await client.set_env({"CLAIMED_BY": "caller-1"})
    code = await client.run_code("import os; print(os.environ['CLAIMED_BY'], kept)", timeout=10)
    assert code.stdout == "caller-1 state\n"
    command = await client.run_command("echo $CLAIMED_BY", timeout=10)
    assert command.stdout == "caller-1\n"


async def test_code_imports_a_module_written_to_the_workspace(client: AgentClient) -> None:
    await client.run_command("echo 'VALUE = 42' > /workspace/helper_module.py", timeout=10)
    result = await client.run_code("import helper_module\nprint(helper_module.VALUE)", timeout=10)
    assert result.stdout == "42\n", result.error


async def test_annotations_in_a_cell_are_evaluated_as_in_plain_python(
    client: AgentClient,
) -> None:
    result = await client.run_code("def f(x: int) -> None: ...\nf.__annotations__['x']", timeout=10)
    assert result.result == "<class 'int'>"
