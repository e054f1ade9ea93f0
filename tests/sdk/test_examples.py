"""The examples and the README's snippets run, so they cannot rot."""

import json
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from llmsafespace import sdk
from llmsafespace.devstack.__main__ import write_env_file
from llmsafespace.sdk import AsyncSandbox, Sandbox, SandboxTools

ROOT = Path(__file__).resolve().parents[2]


def test_the_public_api_is_sorted_and_complete() -> None:
    assert sdk.__all__ == sorted(sdk.__all__)
    assert all(hasattr(sdk, name) for name in sdk.__all__)


def test_tool_definitions_are_given_in_both_formats() -> None:
    tools = SandboxTools(sandbox=None)
    openai = {tool["function"]["name"]: tool["function"] for tool in tools.openai()}
    anthropic = {tool["name"]: tool for tool in tools.anthropic()}
    assert set(openai) == set(anthropic) == {"run_code", "run_command", "read_file", "write_file"}
    for name in openai:
        assert openai[name]["parameters"] == anthropic[name]["input_schema"]
    assert anthropic["run_command"]["input_schema"]["required"] == ["command"]
    assert anthropic["write_file"]["input_schema"]["required"] == ["path", "content"]
    assert anthropic["read_file"]["input_schema"]["required"] == ["path"]


@pytest.mark.stack
def test_the_dispatcher_runs_calls_and_reports_bad_ones(client_env) -> None:
    with Sandbox() as sandbox:
        tools = SandboxTools(sandbox)
        answer = tools.anthropic_result(
            {"id": "t1", "name": "run_command", "input": {"command": "echo hi"}}
        )
        assert (answer["tool_use_id"], answer["is_error"]) == ("t1", False)
        assert '"stdout": "hi\\n"' in answer["content"]
        bad = tools.anthropic_result({"id": "t2", "name": "rm_rf", "input": {}})
        assert bad["is_error"]
        assert "unknown tool" in bad["content"]
        assert "invalid_request" in tools.dispatch("run_code", {"code": "1", "timeout": -1})


@pytest.mark.stack
def test_the_file_tools_write_and_read_through_dispatch(client_env) -> None:
    with Sandbox() as sandbox:
        tools = SandboxTools(sandbox, max_output_chars=10)
        written = tools.dispatch("write_file", {"path": "notes/a.txt", "content": "héllo\n"})
        assert json.loads(written) == {"path": "/workspace/notes/a.txt", "size": 7}
        assert sandbox.files.read_text("/workspace/notes/a.txt") == "héllo\n"
        read = json.loads(tools.dispatch("read_file", '{"path": "/workspace/notes/a.txt"}'))
        assert read == {
            "path": "/workspace/notes/a.txt",
            "size": 7,
            "offset": 0,
            "content": "héllo\n",
            "truncated": False,
        }
        # A long file is read a part at a time (max_output_chars bytes), never whole.
        sandbox.run_command("seq 1 100 > /tmp/long.txt")
        first = json.loads(tools.dispatch("read_file", {"path": "/tmp/long.txt"}))
        assert (first["content"], first["truncated"], first["size"]) == (
            "1\n2\n3\n4\n5\n",
            True,
            292,
        )
        assert first["next_offset"] == 10
        last = json.loads(tools.dispatch("read_file", {"path": "/tmp/long.txt", "offset": 282}))
        assert (last["content"], last["truncated"]) == ("98\n99\n100\n", False)
        assert "next_offset" not in last
        for offset in (-1, "0", True, 1.5):
            refused = tools.dispatch("read_file", {"path": "/tmp/long.txt", "offset": offset})
            assert "must be an integer >= 0" in refused

        missing = tools.anthropic_result(
            {"id": "t1", "name": "read_file", "input": {"path": "nope.txt"}}
        )
        assert missing["is_error"]
        assert "not_found" in missing["content"]
        for bad in ({"path": "x"}, {"path": 1, "content": "x"}, {"content": "x"}):
            assert "needs a string" in tools.dispatch("write_file", bad)
        assert "unknown arguments" in tools.dispatch("read_file", {"path": "x", "mode": "rb"})
        outside = json.loads(tools.dispatch("write_file", {"path": "/etc/x", "content": ""}))
        assert outside["error"]["code"] != "invalid_tool_call"


@pytest.mark.stack
async def test_the_file_tools_on_an_async_sandbox(client_env) -> None:
    async with await AsyncSandbox.create() as sandbox:
        tools = SandboxTools(sandbox)
        assert json.loads(
            await tools.adispatch("write_file", {"path": "b.txt", "content": "hi"})
        ) == {"path": "/workspace/b.txt", "size": 2}
        assert json.loads(await tools.adispatch("read_file", {"path": "b.txt"}))["content"] == "hi"
        ran = json.loads(await tools.adispatch("run_command", {"command": "cat b.txt"}))
        assert ran["stdout"] == "hi"


@pytest.mark.stack
def test_the_agent_loop_example_runs_against_the_stack(client_env) -> None:
    example = runpy.run_path(str(ROOT / "examples" / "agent_loop.py"))
    assert example["run_agent"]("go") == "mean, median = (3.875, 3.5); sum = 45"


@pytest.mark.stack
def test_the_agent_loop_example_runs_as_a_script(client_env) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "agent_loop.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "sum = 45" in done.stdout


@pytest.mark.stack
def test_the_readme_shell_session_runs(stack, tmp_path: Path) -> None:
    """The README's "Using it" as written: `source .llmsafespace/env` where `make up` ran,
    then curl; then a program started from that shell finds the key, as the SDK would."""
    session = re.search(r"## Using it\n\n```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert session
    (tmp_path / ".llmsafespace").mkdir()
    write_env_file(tmp_path / ".llmsafespace" / "env", stack)
    script = (
        session.group(1) + "python3 -c 'import os; print(os.environ[\"LLMSAFESPACE_API_KEY\"])'\n"
    )
    done = subprocess.run(
        ["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert '"stdout":"42\\n"' in done.stdout
    assert '"exitCode":3' in done.stdout
    assert '"status":"timeout"' in done.stdout
    assert "data: " in done.stdout  # the streamed events
    assert done.stdout.endswith(f"{stack.admin_key}\n")


@pytest.mark.stack
@pytest.mark.parametrize("readme", ["README.md", "sdk/python/README.md"])
def test_the_readme_python_snippets_run(client_env, requires_stream, readme: str) -> None:
    text = (ROOT / readme).read_text()
    snippets = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert snippets
    for snippet in snippets:
        exec(compile(snippet, readme, "exec"), {})
