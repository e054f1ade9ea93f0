"""The examples and the README's snippets run, so they cannot rot."""

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from llmsafespace import sdk
from llmsafespace.sdk import Sandbox, SandboxTools

ROOT = Path(__file__).resolve().parents[2]


def test_the_public_api_is_sorted_and_complete() -> None:
    assert sdk.__all__ == sorted(sdk.__all__)
    assert all(hasattr(sdk, name) for name in sdk.__all__)


def test_tool_definitions_are_given_in_both_formats() -> None:
    tools = SandboxTools(sandbox=None)
    openai = {tool["function"]["name"]: tool["function"] for tool in tools.openai()}
    anthropic = {tool["name"]: tool for tool in tools.anthropic()}
    assert set(openai) == set(anthropic) == {"run_code", "run_command"}
    assert openai["run_code"]["parameters"] == anthropic["run_code"]["input_schema"]
    assert anthropic["run_command"]["input_schema"]["required"] == ["command"]


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
def test_the_readme_python_snippet_runs(client_env, requires_stream) -> None:
    readme = (ROOT / "sdk" / "python" / "README.md").read_text()
    snippets = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    assert snippets
    for snippet in snippets:
        exec(compile(snippet, "README.md", "exec"), {})
