"""The MCP server, driven by the official `mcp` SDK's own client against the running stack:
over Streamable HTTP at the gateway's `/mcp`, and over stdio (`llmsafespace mcp`)."""

import base64
import hashlib
import json
import secrets
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

from .test_packages import npm_tarball, serve_routes

Connect = Callable[[str], AbstractAsyncContextManager[Client]]
CLI = shutil.which("llmsafespace", path=str(Path(sys.executable).parent))


def _mcp_url(api_url: str) -> str:
    return api_url.removesuffix("/api/v1") + "/mcp"


@asynccontextmanager
async def _http_client(stack, key: str) -> AsyncIterator[Client]:
    """An MCP client session over Streamable HTTP at the gateway's `/mcp`."""
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx2.AsyncClient(headers=headers, timeout=120) as http_client:
        transport = streamable_http_client(_mcp_url(stack.api_url), http_client=http_client)
        async with Client(transport) as client:
            yield client


@pytest.fixture(params=["http", "stdio"])
def connect(request: pytest.FixtureRequest, stack) -> Connect:
    """`async with connect(key) as client`: an MCP client session for that API key."""

    def http(key: str) -> AbstractAsyncContextManager[Client]:
        return _http_client(stack, key)

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


async def test_a_listing_cut_at_its_size_says_truncated(connect: Connect, stack, sandbox) -> None:
    async with connect(stack.admin_key) as client:
        many = "mkdir -p /workspace/many && cd /workspace/many && seq 1 5000 | xargs touch"
        made = await client.call_tool("run_command", {"command": many, "sandbox_id": sandbox})
        assert _body(made)["exit_code"] == 0
        listed = await client.call_tool("list_files", {"path": "many", "sandbox_id": sandbox})
        few = await client.call_tool("list_files", {"path": "/tmp", "sandbox_id": sandbox})
    assert _body(listed)["truncated"] is True
    assert 1000 < len(_body(listed)["entries"]) < 5000
    assert _body(few)["truncated"] is False


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


def _until_process(marker: str, *, alive: bool) -> str:
    """Code that returns once a process whose command line holds `marker` is alive (or
    once none is), printing `ok`; bounded by the run's own timeout."""
    return (
        "import os, time\n"
        "def mentions(pid):\n"
        "    try:\n"
        f"        return {marker!r}.encode() in open(f'/proc/{{pid}}/cmdline', 'rb').read()\n"
        "    except OSError:\n"
        "        return False\n"
        "def alive():\n"
        "    return any(mentions(p) for p in os.listdir('/proc') if p.isdigit())\n"
        f"while alive() is not {alive}: time.sleep(0.1)\n"
        "print('ok')"
    )


def _publish(routes: dict[str, bytes], url: str, name: str, postinstall: str) -> None:
    """`name@1.0.0` on the npm registry `routes` serves, with a postinstall script."""
    package = {"name": name, "version": "1.0.0", "scripts": {"postinstall": postinstall}}
    data = npm_tarball({"package.json": json.dumps(package), "index.js": ""})
    path = f"/{name}/-/{name}-1.0.0.tgz"
    routes[path] = data
    dist = {
        "tarball": url + path,
        "integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
        "shasum": hashlib.sha1(data).hexdigest(),
    }
    manifest = {**package, "hasInstallScript": True, "dist": dist}
    document = {"name": name, "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": manifest}}
    routes[f"/{name}"] = json.dumps(document).encode()


@pytest.fixture(scope="module")
async def npm_registry(stack) -> AsyncIterator[tuple[dict[str, bytes], str]]:
    """(routes, URL) of an npm registry on 127.0.0.1 that exec-svc mirrors (every replica
    restarted with NPM_REGISTRY_URL); a test publishes its packages into `routes`."""
    routes: dict[str, bytes] = {}
    server, url = serve_routes(routes)
    replicas = stack.replicas["exec-svc"]
    originals = [service.env for service in replicas]
    async with stack.stopped("exec-svc"):
        for service, original in zip(replicas, originals, strict=True):
            service.env = {**original, "NPM_REGISTRY_URL": url}
    try:
        yield routes, url
    finally:
        async with stack.stopped("exec-svc"):
            for service, original in zip(replicas, originals, strict=True):
                service.env = original
        server.shutdown()
        server.server_close()


async def test_install_output_arrives_as_progress_and_cancelling_stops_the_install(
    connect: Connect, stack, sandbox, npm_registry: tuple[dict[str, bytes], str]
) -> None:
    """The installer's output arrives as progress while it runs; cancelling the call
    then cancels the install, whose postinstall script would otherwise run for 10 min."""
    routes, url = npm_registry
    package = f"hangs-{secrets.token_hex(4)}"
    marker = f"postinstall-running-{secrets.token_hex(4)}"
    _publish(routes, url, package, f"sleep 600 && echo {marker}")
    started = anyio.Event()
    messages: list[str] = []

    async def progress(_: float, __: float | None, message: str | None) -> None:
        messages.append(message or "")
        started.set()

    install = {"packages": [package], "manager": "npm", "sandbox_id": sandbox}
    async with connect(stack.admin_key) as client:
        async with anyio.create_task_group() as group:

            async def call() -> None:
                await client.call_tool("install_packages", install, progress_callback=progress)

            group.start_soon(call)
            with anyio.fail_after(120):
                await started.wait()
            running = await client.call_tool(
                "run_code",
                {"code": _until_process(marker, alive=True), "timeout": 60, "sandbox_id": sandbox},
            )
            assert _body(running)["stdout"] == "ok\n", "the postinstall script never ran"
            group.cancel_scope.cancel()
        gone = await client.call_tool(
            "run_code",
            {"code": _until_process(marker, alive=False), "timeout": 60, "sandbox_id": sandbox},
        )
    assert messages[0] == "Fetched 1 package(s) from the npm mirror\n", messages
    assert _body(gone)["stdout"] == "ok\n"


@pytest.mark.local_driver("the data runtime's shared prefix is bound by the local driver")
async def test_a_plot_comes_back_as_image_content(connect: Connect, stack) -> None:
    """matplotlib in a python:3.11-data sandbox: the figure is an MCP image."""
    async with connect(stack.admin_key) as client:
        created = await client.call_tool(
            "create_sandbox", {"runtime": "python:3.11-data", "timeout": 300}
        )
        sandbox_id = _body(created)["sandbox_id"]
        try:
            code = "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()"
            plotted = await client.call_tool(
                "run_code", {"code": code, "timeout": 120, "sandbox_id": sandbox_id}
            )
        finally:
            await client.call_tool("terminate_sandbox", {"sandbox_id": sandbox_id})
    assert _body(plotted)["status"] == "completed"
    images = [item for item in plotted.content if isinstance(item, types.ImageContent)]
    assert [image.mime_type for image in images] == ["image/png"]
    assert base64.b64decode(images[0].data).startswith(b"\x89PNG\r\n\x1a\n")


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
    assert _error_text(result) == f"not_found: no such sandbox: {sandbox}"
    assert _error_text(terminated) == f"not_found: no such sandbox: {sandbox}"
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


async def test_http_behind_a_tls_proxy_still_reaches_its_own_api(stack, sandbox) -> None:
    """A proxy that ends TLS says `X-Forwarded-Proto: https`; the tools still call this
    gateway over the plain HTTP it listens on."""
    call = {"name": "run_code", "arguments": {"code": "6 * 7", "sandbox_id": sandbox}}
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call}
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {stack.admin_key}",
        "X-Forwarded-Proto": "https",
    }
    async with httpx.AsyncClient(timeout=60) as http:
        answered = await http.post(_mcp_url(stack.api_url), json=request, headers=headers)
    assert answered.status_code == 200, answered.text
    data = answered.text.partition("data: ")[2]  # one `text/event-stream` event
    result = json.loads(data)["result"]
    assert not result.get("isError"), result
    assert "42" in json.dumps(result["content"])


async def test_http_with_a_body_over_the_limit_is_413_in_the_error_envelope(stack) -> None:
    content = "x" * (4 * 1024 * 1024 + 1)
    call = {"name": "write_file", "arguments": {"path": "/workspace/big", "content": content}}
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call}
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {stack.admin_key}",
    }

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: read to the limit
        yield json.dumps(request).encode()

    async with httpx.AsyncClient(timeout=60) as http:
        declared = await http.post(_mcp_url(stack.api_url), json=request, headers=headers)
        streamed = await http.post(_mcp_url(stack.api_url), content=chunked(), headers=headers)
    for answered in (declared, streamed):
        assert answered.status_code == 413, answered.text
        assert answered.json()["error"]["code"] == "payload_too_large"


async def test_stdio_with_a_bad_key_answers_tool_errors(stack) -> None:
    assert CLI is not None
    env = {"LLMSAFESPACE_API_URL": stack.api_url, "LLMSAFESPACE_API_KEY": "lsp_not-a-key"}
    parameters = StdioServerParameters(command=CLI, args=["mcp"], env=env)
    async with Client(stdio_client(parameters)) as client:
        result = await client.call_tool("list_sandboxes", {})
    assert "API key" in _error_text(result) or "unauthorized" in _error_text(result).lower()


async def test_over_http_a_call_without_a_sandbox_uses_the_only_running_one(
    stack, api: httpx.AsyncClient
) -> None:
    """Streamable HTTP is stateless (any replica serves any request): a call that names
    no sandbox uses the caller's only running sandbox, and with several it never guesses
    (it ran in the newest, which need not be the one the model meant)."""
    user = await api.post("/users", json={"username": f"mcp-{secrets.token_hex(4)}"})
    assert user.status_code == 201, user.text
    key = user.json()["apiKey"]
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as own,
        _http_client(stack, key) as client,
    ):
        first = _body(await client.call_tool("create_sandbox", {"timeout": 300}))["sandbox_id"]
        _body(await client.call_tool("run_code", {"code": "v = 'first'"}))
        created = await own.post("/sandboxes", json={"timeout": 300})
        assert created.status_code == 201, created.text
        second = created.json()["id"]
        ambiguous = await client.call_tool("run_code", {"code": "v"})
        named = _body(await client.call_tool("run_code", {"code": "v", "sandbox_id": first}))
        await own.delete(f"/sandboxes/{second}")
        only = _body(await client.call_tool("run_code", {"code": "v"}))
        ended = _body(await client.call_tool("terminate_sandbox", {}))
        left = await client.call_tool("run_code", {"code": "1"})
    message = _error_text(ambiguous)
    assert message.startswith("invalid_request: several sandboxes are running"), message
    assert first in message
    assert second in message
    assert message.endswith("pass sandbox_id")
    assert named["result"] == only["result"] == "'first'"
    assert ended["sandbox_id"] == first
    assert _error_text(left) == "not_found: no sandbox yet: call create_sandbox first"


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


async def test_a_session_keeps_the_sandbox_it_last_used_successfully(
    stack, api: httpx.AsyncClient
) -> None:
    """A call becomes the session's default only once it succeeded: terminating another
    sandbox, or a call that failed on one, leaves the default alone; terminating the
    default clears it. A third sandbox of the caller's, outside the session, keeps
    "the caller's only running one" from standing in for a forgotten default."""
    assert CLI is not None
    user = await api.post("/users", json={"username": f"mcp-{secrets.token_hex(4)}"})
    assert user.status_code == 201, user.text
    key = user.json()["apiKey"]
    headers = {"Authorization": f"Bearer {key}"}
    env = {"LLMSAFESPACE_API_URL": stack.api_url, "LLMSAFESPACE_API_KEY": key}
    parameters = StdioServerParameters(command=CLI, args=["mcp"], env=env)
    async with (
        httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=60) as own,
        Client(stdio_client(parameters)) as client,
    ):
        first = _body(await client.call_tool("create_sandbox", {"timeout": 300}))["sandbox_id"]
        second = _body(await client.call_tool("create_sandbox", {"timeout": 300}))["sandbox_id"]
        outside = await own.post("/sandboxes", json={"timeout": 300})
        assert outside.status_code == 201, outside.text
        _body(await client.call_tool("run_code", {"code": "v = 'first'", "sandbox_id": first}))
        _body(await client.call_tool("terminate_sandbox", {"sandbox_id": second}))
        after_other_ended = _body(await client.call_tool("run_code", {"code": "v"}))
        failed = await client.call_tool("run_code", {"code": "v", "sandbox_id": second})
        after_failure = _body(await client.call_tool("run_code", {"code": "v"}))
        ended = _body(await client.call_tool("terminate_sandbox", {}))
        listed = _body(await client.call_tool("list_sandboxes", {}))
        await own.delete(f"/sandboxes/{outside.json()['id']}")
    assert after_other_ended["result"] == after_failure["result"] == "'first'"
    assert _error_text(failed).startswith("sandbox_not_running: "), _error_text(failed)
    assert ended["sandbox_id"] == first
    assert listed["default_sandbox"] is None


async def test_read_file_reads_a_large_file_from_its_beginning_a_part_at_a_time(
    connect: Connect, stack, sandbox
) -> None:
    """At most 20,000 bytes a call, from the start; the size and the next offset are
    given, and a character cut by the limit starts the next part instead."""
    make = "open('/workspace/big.txt', 'w').write('a' * 19_999 + 'é' + 'b' * 40_000 + 'END')"
    args = {"path": "big.txt", "sandbox_id": sandbox}
    async with connect(stack.admin_key) as client:
        _body(await client.call_tool("run_code", {"code": make, "sandbox_id": sandbox}))
        first = _body(await client.call_tool("read_file", args))
        second = _body(await client.call_tool("read_file", {**args, "offset": 19_999}))
        last = _body(await client.call_tool("read_file", {**args, "offset": 60_000}))
        past = _body(await client.call_tool("read_file", {**args, "offset": 70_000}))
        small = await client.call_tool("read_file", {**args, "length": 20_001})
    assert first["content"] == "a" * 19_999
    assert (first["size"], first["truncated"], first["next_offset"]) == (60_004, True, 19_999)
    assert "offset=19999" in first["note"]
    assert second["content"] == "é" + "b" * 19_998
    assert second["next_offset"] == 39_999
    assert (last["content"], last["truncated"]) == ("bEND", False)
    assert "next_offset" not in last
    assert (past["content"], past["size"], past["truncated"]) == ("", 60_004, False)
    assert "length" in _error_text(small)


async def test_read_file_parts_read_on_from_each_next_offset_join_up_to_the_exact_text(
    connect: Connect, stack, sandbox
) -> None:
    """A part never ends inside a character, and a `length` smaller than one character
    gives that whole character (it gave a replacement character and skipped the rest)."""
    text = "ab😀é" * 3
    file = {"path": "emoji.txt", "sandbox_id": sandbox}
    parts: list[str] = []
    offset: int | None = 0
    async with connect(stack.admin_key) as client:
        _body(await client.call_tool("write_file", {**file, "content": text}))
        while offset is not None:
            read = _body(
                await client.call_tool("read_file", {**file, "length": 3, "offset": offset})
            )
            parts.append(read["content"])
            offset = read.get("next_offset")
    assert parts[:3] == ["ab", "😀", "éa"]
    assert "".join(parts) == text


async def test_a_run_the_platform_refuses_is_a_tool_error_with_its_code_and_message(
    connect: Connect, stack, sandbox
) -> None:
    async with connect(stack.admin_key) as client:
        nul = await client.call_tool("run_code", {"code": "x = 1\0", "sandbox_id": sandbox})
        cwd = await client.call_tool(
            "run_command", {"command": "pwd", "cwd": "/tmp\0", "sandbox_id": sandbox}
        )
    assert _error_text(nul).startswith("invalid_request: ")
    assert "NUL" in _error_text(nul)
    assert _error_text(cwd).startswith("invalid_request: ")


async def test_long_output_keeps_its_beginning_and_end_and_says_what_was_dropped(
    connect: Connect, stack, sandbox
) -> None:
    async with connect(stack.admin_key) as client:
        listed = _body(
            await client.call_tool(
                "run_command", {"command": "seq 1 200000", "sandbox_id": sandbox}
            )
        )
        raised = _body(
            await client.call_tool(
                "run_code", {"code": "raise ValueError('v' * 500_000)", "sandbox_id": sandbox}
            )
        )
        shown = _body(
            await client.call_tool("run_code", {"code": "'x' * 100_000", "sandbox_id": sandbox})
        )
    written = "".join(f"{n}\n" for n in range(1, 200_001))
    stdout = listed["stdout"]
    assert stdout.startswith("1\n2\n3\n")
    assert stdout.endswith("199999\n200000\n")
    dropped = listed["truncated"]["stdout"]
    assert dropped == len(written) - 20_000
    assert f"[... {dropped} characters dropped ...]" in stdout
    assert listed["ended_by"] == "exit"
    assert len(raised["error"]["value"]) < 20_100
    assert set(raised["truncated"]) >= {"error.value", "error.traceback"}
    assert raised["error"]["name"] == "ValueError"
    assert len(shown["result"]) < 20_100
    assert shown["truncated"] == {"result": 100_002 - 20_000}


@pytest.mark.local_driver("the fake kubelet runs its Pods without a memory limit")
async def test_a_run_killed_for_memory_says_it_ended_by_oom(
    connect: Connect, stack, api: httpx.AsyncClient
) -> None:
    created = await api.post("/sandboxes", json={"timeout": 300, "resources": {"memory": "128Mi"}})
    assert created.status_code == 201, created.text
    sandbox_id = created.json()["id"]
    try:
        async with connect(stack.admin_key) as client:
            hog = {"code": "hog = bytearray(400 * 2**20)", "sandbox_id": sandbox_id}
            body = _body(await client.call_tool("run_code", hog))
    finally:
        await api.delete(f"/sandboxes/{sandbox_id}")
    assert (body["status"], body["ended_by"]) == ("failed", "oom"), body


async def test_svg_and_html_results_arrive_as_text(connect: Connect, stack, sandbox) -> None:
    code = (
        "class Drawing:\n"
        "    def _repr_svg_(self):\n"
        '        return \'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>\'\n'
        "class Page:\n"
        "    def _repr_html_(self):\n"
        "        return '<b>bold</b>'\n"
        "display(Page())\n"
        "Drawing()"
    )
    async with connect(stack.admin_key) as client:
        ran = await client.call_tool("run_code", {"code": code, "sandbox_id": sandbox})
    texts = [item.text for item in ran.content[1:] if isinstance(item, types.TextContent)]
    assert texts == ["<b>bold</b>", '<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"/></svg>']


async def test_a_refusal_names_its_reason_once(connect: Connect, stack) -> None:
    async with connect(stack.admin_key) as client:
        refused = await client.call_tool("create_sandbox", {"runtime": "ruby:3"})
    text = _error_text(refused)
    assert text.startswith("invalid_request: unknown runtime 'ruby:3'")
    assert text.count("unknown runtime") == 1
