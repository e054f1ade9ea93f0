"""The MCP server, driven by the official `mcp` SDK's own client against the running stack:
over Streamable HTTP at the gateway's `/mcp`, and over stdio (`llmsafespace mcp`)."""

import json
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

Connect = Callable[[str], AbstractAsyncContextManager[Client]]
CLI = shutil.which("llmsafespace", path=str(Path(sys.executable).parent))


def _mcp_url(api_url: str) -> str:
    return api_url.removesuffix("/api/v1") + "/mcp"


@pytest.fixture(params=["http", "stdio"])
def connect(request: pytest.FixtureRequest, stack) -> Connect:
    """`async with connect(key) as client`: an MCP client session for that API key."""

    @asynccontextmanager
    async def http(key: str) -> AsyncIterator[Client]:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx2.AsyncClient(headers=headers, timeout=120) as http_client:
            transport = streamable_http_client(_mcp_url(stack.api_url), http_client=http_client)
            async with Client(transport) as client:
                yield client

    @asynccontextmanager
    async def stdio(key: str) -> AsyncIterator[Client]:
        assert CLI is not None
        env = {"LLMSAFESPACE_API_URL": stack.api_url, "LLMSAFESPACE_API_KEY": key}
        parameters = StdioServerParameters(command=CLI, args=["mcp"], env=env)
        async with Client(stdio_client(parameters)) as client:
            yield client

    return http if request.param == "http" else stdio


def _body(result: types.CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    body: dict[str, Any] = json.loads(first.text)
    return body


def _error_text(result: types.CallToolResult) -> str:
    assert result.is_error
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    return first.text


async def test_tools_are_listed_with_their_schemas(connect: Connect, stack) -> None:
    async with connect(stack.admin_key) as client:
        listed = await client.list_tools()
    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) >= {
        "create_sandbox",
        "run_code",
        "run_command",
        "read_file",
        "write_file",
        "list_files",
        "install_packages",
        "list_sandboxes",
        "terminate_sandbox",
    }
    run_code = tools["run_code"]
    assert run_code.description
    assert run_code.input_schema["required"] == ["code"]
    assert run_code.input_schema["properties"]["timeout"]["type"] == "number"


async def test_a_session_keeps_state_between_calls(connect: Connect, stack) -> None:
    async with connect(stack.admin_key) as client:
        created = _body(await client.call_tool("create_sandbox", {"timeout": 300}))
        sandbox_id = created["sandbox_id"]
        try:
            args = {"sandbox_id": sandbox_id}
            _body(await client.call_tool("run_code", {"code": "x = 41", **args}))
            second = _body(await client.call_tool("run_code", {"code": "print(x + 1)", **args}))
            assert second["stdout"] == "42\n"
            written = {"path": "notes/a.txt", "content": "hello", **args}
            assert _body(await client.call_tool("write_file", written))["size"] == 5
            read = _body(await client.call_tool("read_file", {"path": "notes/a.txt", **args}))
            assert read["content"] == "hello"
            listing = _body(await client.call_tool("list_files", {"path": "notes", **args}))
            assert [entry["name"] for entry in listing["entries"]] == ["a.txt"]
            listed = _body(await client.call_tool("list_sandboxes", {"status": "running"}))
            assert sandbox_id in [s["sandbox_id"] for s in listed["sandboxes"]]
        finally:
            ended = _body(await client.call_tool("terminate_sandbox", {"sandbox_id": sandbox_id}))
    assert ended["status"] in ("terminating", "terminated")


@pytest.fixture(scope="module")
async def sandbox(stack) -> AsyncIterator[str]:
    headers = {"Authorization": f"Bearer {stack.admin_key}"}
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as api:
        created = await api.post("/sandboxes", json={"timeout": 900})
        assert created.status_code == 201, created.text
        identifier: str = created.json()["id"]
        yield identifier
        await api.delete(f"/sandboxes/{identifier}")


async def test_a_failing_command_reports_its_exit_code(connect: Connect, stack, sandbox) -> None:
    async with connect(stack.admin_key) as client:
        failed = await client.call_tool(
            "run_command", {"command": "echo oops >&2; exit 3", "sandbox_id": sandbox}
        )
        raised = await client.call_tool("run_code", {"code": "1/0", "sandbox_id": sandbox})
    body = _body(failed)
    assert (body["exit_code"], body["status"], body["stderr"]) == (3, "failed", "oops\n")
    assert _body(raised)["error"]["name"] == "ZeroDivisionError"


async def test_output_arrives_as_progress_and_cancelling_stops_the_run(
    connect: Connect, stack, sandbox
) -> None:
    """The first output chunk arrives as a progress notification while the command still
    runs; cancelling the call then cancels the execution in the sandbox."""
    started = anyio.Event()
    messages: list[str] = []

    async def progress(_: float, __: float | None, message: str | None) -> None:
        messages.append(message or "")
        started.set()

    marker = "mcp-cancel-marker"
    command = f"echo started; exec sleep 300 # {marker}"
    async with connect(stack.admin_key) as client:
        async with anyio.create_task_group() as group:

            async def call() -> None:
                await client.call_tool(
                    "run_command",
                    {"command": command, "timeout": 600, "sandbox_id": sandbox},
                    progress_callback=progress,
                )

            group.start_soon(call)
            await started.wait()
            group.cancel_scope.cancel()
        assert messages[0] == "started\n"
        probe = (
            "import os\n"
            f"def alive():\n"
            f"    return any({marker!r}.encode() in open(f'/proc/{{p}}/cmdline', 'rb').read()"
            " for p in os.listdir('/proc') if p.isdigit())\n"
            "import time\n"
            "while alive(): time.sleep(0.1)\n"
            "print('gone')"
        )
        gone = await client.call_tool(
            "run_code", {"code": probe, "timeout": 120, "sandbox_id": sandbox}
        )
    assert _body(gone)["stdout"] == "gone\n"


async def test_bad_arguments_are_tool_errors(connect: Connect, stack, sandbox) -> None:
    async with connect(stack.admin_key) as client:
        wrong_type = await client.call_tool("run_code", {"code": 42, "sandbox_id": sandbox})
        unknown = await client.call_tool("run_code", {"code": "1", "language": "ruby"})
        missing = await client.call_tool("read_file", {})
    assert "invalid arguments for run_code: code:" in _error_text(wrong_type)
    assert "language" in _error_text(unknown)
    assert "path" in _error_text(missing)


async def test_another_users_sandbox_is_no_such_sandbox(
    connect: Connect, stack, sandbox, second_user_key: str
) -> None:
    async with connect(second_user_key) as client:
        result = await client.call_tool("run_code", {"code": "1", "sandbox_id": sandbox})
        terminated = await client.call_tool("terminate_sandbox", {"sandbox_id": sandbox})
    assert _error_text(result) == f"no such sandbox: {sandbox}"
    assert _error_text(terminated) == f"no such sandbox: {sandbox}"
    assert "Traceback" not in _error_text(result)


async def test_http_without_a_credential_is_401(stack) -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(timeout=30) as http:
        bare = await http.post(_mcp_url(stack.api_url), json=request, headers=headers)
        wrong = await http.post(
            _mcp_url(stack.api_url),
            json=request,
            headers=headers | {"Authorization": "Bearer lsp_not-a-key"},
        )
    assert bare.status_code == 401
    assert bare.json()["error"]["code"] == "unauthorized"
    assert wrong.status_code == 401


async def test_stdio_with_a_bad_key_answers_tool_errors(stack) -> None:
    assert CLI is not None
    env = {"LLMSAFESPACE_API_URL": stack.api_url, "LLMSAFESPACE_API_KEY": "lsp_not-a-key"}
    parameters = StdioServerParameters(command=CLI, args=["mcp"], env=env)
    async with Client(stdio_client(parameters)) as client:
        result = await client.call_tool("list_sandboxes", {})
    assert "API key" in _error_text(result) or "unauthorized" in _error_text(result).lower()


async def test_a_session_uses_the_sandbox_it_created(stack) -> None:
    """Over stdio a session is one process: calls that name no sandbox use the one it
    created."""
    assert CLI is not None
    env = {"LLMSAFESPACE_API_URL": stack.api_url, "LLMSAFESPACE_API_KEY": stack.admin_key}
    parameters = StdioServerParameters(command=CLI, args=["mcp"], env=env)
    async with Client(stdio_client(parameters)) as client:
        created = _body(await client.call_tool("create_sandbox", {}))
        try:
            await client.call_tool("run_code", {"code": "y = 6 * 7"})
            shown = _body(await client.call_tool("run_code", {"code": "y"}))
        finally:
            ended = _body(await client.call_tool("terminate_sandbox", {}))
    assert shown["result"] == "42"
    assert ended["sandbox_id"] == created["sandbox_id"]
