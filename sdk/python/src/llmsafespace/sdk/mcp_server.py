"""The MCP server: the sandbox tools (`mcp_tools`) served with the official `mcp` SDK's
low-level `Server`, over stdio (`llmsafespace mcp`) or mounted by the gateway at `/mcp`.

It is a thin client of the public API: every tool call is an API request made with the
caller's own credential, so authentication, ownership, quotas, rate limits and audit apply
as they do to any client. Long output is relayed as progress notifications when the client
sent a progress token; a cancelled call cancels its execution."""

import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeAlias

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from pydantic import ValidationError as ArgumentsError

from .config import ClientConfig
from .errors import LLMSafeSpaceError, ValidationError
from .mcp_tools import (
    MAX_OUTPUT_CHARS,
    TOOLS,
    Arguments,
    CreateSandbox,
    InstallPackages,
    ListFiles,
    ListSandboxes,
    ReadFile,
    RunCode,
    RunCommand,
    SandboxSession,
    TerminateSandbox,
    WriteFile,
)
from .models import ExecutionResult

log = logging.getLogger(__name__)
SERVER_NAME = "llmsafespace"
SessionFor = Callable[[ServerRequestContext[Any, Any]], SandboxSession]
"""Which caller (and which session state) a request belongs to."""
Content: TypeAlias = types.TextContent | types.ImageContent
_IMAGES = ("image/png", "image/jpeg", "image/gif", "image/webp")
"""Sent as MCP images: what models take as images (SVG is not among them)."""
_TEXTS = ("image/svg+xml", "text/markdown", "text/plain", "text/html")
"""Else the first of these as text, richest for a model first. SVG leads: a drawing's
text/plain is only its repr; HTML trails: a table's text/plain reads better."""
_DEFAULT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-f]+>")
"""Python's `object.__repr__`: a text/plain that says nothing."""
HEAD_CHARS = MAX_OUTPUT_CHARS // 4
"""Of a text cut to `MAX_OUTPUT_CHARS`, how much is its beginning; the rest is its end."""


def build_server(session_for: SessionFor) -> Server[Any]:
    """The MCP server; `session_for` picks the caller's `SandboxSession` per request."""
    definitions = {tool.name: tool for tool in TOOLS}

    async def list_tools(
        _: ServerRequestContext[Any, Any], __: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=tool.name,
                    description=tool.description,
                    input_schema=tool.arguments.model_json_schema(),
                )
                for tool in TOOLS
            ]
        )

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tool = definitions.get(params.name)
        if tool is None:
            return _failure(f"unknown tool {params.name!r}; known: {', '.join(definitions)}")
        try:
            args = tool.arguments.model_validate(params.arguments or {})
        except ArgumentsError as exc:
            return _failure(f"invalid arguments for {tool.name}: {_describe(exc)}")
        try:
            return await _run(session_for(ctx), args, _progress(ctx))
        except LLMSafeSpaceError as exc:
            return _failure(_platform_message(exc))
        except Exception:
            log.exception("mcp_tool_failed", extra={"tool": tool.name})
            return _failure(f"{tool.name} failed: internal error")

    return Server(
        SERVER_NAME,
        version="0.1.0",
        instructions="Run untrusted code in isolated LLMSafeSpace sandboxes: create_sandbox, "
        "then run_code / run_command / files; the session remembers its sandbox.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_stdio(config: ClientConfig) -> None:
    """Serve one client over stdin/stdout (a desktop client spawns `llmsafespace mcp`)."""
    session = SandboxSession(config)
    server = build_server(lambda _: session)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def _run(
    session: SandboxSession,
    args: Arguments,
    on_output: Callable[[str, str], Awaitable[None]],
) -> types.CallToolResult:
    if isinstance(args, RunCode | RunCommand):
        return _execution(await session.execute(args, on_output))
    if isinstance(args, InstallPackages):
        return _execution(await session.install_packages(args, on_output))
    if isinstance(args, CreateSandbox):
        return _success(await session.create(args))
    if isinstance(args, ReadFile):
        return _success(await session.read_file(args))
    if isinstance(args, WriteFile):
        return _success(await session.write_file(args))
    if isinstance(args, ListFiles):
        return _success(await session.list_files(args))
    if isinstance(args, ListSandboxes):
        return _success(await session.list_sandboxes(args))
    if isinstance(args, TerminateSandbox):
        return _success(await session.terminate(args))
    raise AssertionError(f"no implementation for {type(args).__name__}")


def _progress(ctx: ServerRequestContext[Any, Any]) -> Callable[[str, str], Awaitable[None]]:
    """Each output chunk as a progress notification (a no-op without a progress token)."""
    chunks = 0

    async def relay(stream: str, text: str) -> None:
        nonlocal chunks
        chunks += 1
        message = text if stream == "stdout" else f"[stderr] {text}"
        await ctx.session.report_progress(chunks, None, message)

    return relay


def _execution(result: ExecutionResult) -> types.CallToolResult:
    """The result as JSON text (and structured content), then its rich results. A text
    longer than `MAX_OUTPUT_CHARS` keeps its beginning and end; `truncated` counts the
    characters dropped from each, and `output_truncated` says the platform kept only part
    of the output (the first part of each stream)."""
    dropped: dict[str, int] = {}

    def cut(name: str, text: str | None) -> str | None:
        if text is None:
            return None
        kept, lost = clip(text)
        if lost:
            dropped[name] = lost
        return kept

    error = result.error
    summary: dict[str, Any] = {
        "status": result.status.value,
        "exit_code": result.exit_code,
        "ended_by": result.ended_by.value if result.ended_by else None,
        "stdout": cut("stdout", result.stdout),
        "stderr": cut("stderr", result.stderr),
        "result": cut("result", result.result),
        "error": {
            "name": error.name,
            "value": cut("error.value", error.value),
            "traceback": cut("error.traceback", error.traceback),
        }
        if error
        else None,
        "execution_id": result.execution_id,
    }
    if result.output_truncated:
        summary["output_truncated"] = True
    if dropped:
        summary["truncated"] = dropped
    rich = rich_content(result.results)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(summary)), *rich],
        structured_content=summary,
    )


def clip(text: str) -> tuple[str, int]:
    """`text` cut to about `MAX_OUTPUT_CHARS`, keeping its beginning and its end with a
    line saying how much is missing between; and how many characters were dropped."""
    if len(text) <= MAX_OUTPUT_CHARS:
        return text, 0
    dropped = len(text) - MAX_OUTPUT_CHARS
    head, tail = text[:HEAD_CHARS], text[len(text) - (MAX_OUTPUT_CHARS - HEAD_CHARS) :]
    return f"{head}\n[... {dropped} characters dropped ...]\n{tail}", dropped


def rich_content(results: Iterable[Any]) -> list[Content]:
    """Rich results (MIME bundles: `{"data": {mime: value}, "isMainResult"}` or the SDK's
    result objects with `.data`) as MCP content: raster images as `ImageContent`, else
    the first of SVG, markdown, plain text (not a bare `<… object at 0x…>`) and HTML as
    `TextContent`, cut like output. A main result's plain text is already `result`."""
    content: list[Content] = []
    for item in results:
        data = item.get("data") if isinstance(item, Mapping) else getattr(item, "data", None)
        main = item.get("isMainResult") if isinstance(item, Mapping) else item.is_main_result
        if not isinstance(data, Mapping):
            continue
        image = next((mime for mime in _IMAGES if isinstance(data.get(mime), str)), None)
        if image is not None:
            content.append(types.ImageContent(type="image", data=data[image], mime_type=image))
            continue
        mime = next((mime for mime in _TEXTS if _telling(mime, data.get(mime))), None)
        if mime is not None and not (main and mime == "text/plain"):
            content.append(types.TextContent(type="text", text=clip(data[mime])[0]))
    return content


def _telling(mime: str, value: object) -> bool:
    """Whether `value` is text worth showing as `mime`."""
    if not isinstance(value, str):
        return False
    return mime != "text/plain" or _DEFAULT_REPR.fullmatch(value.strip()) is None


def _success(body: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(body))],
        structured_content=body,
    )


def _failure(message: str) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )


def _platform_message(error: LLMSafeSpaceError) -> str:
    """The API's code and message, with the bad fields it named that the message does
    not already say."""
    message = f"{error.code}: {error.message}" if error.code else error.message
    if isinstance(error, ValidationError):
        fields = [f"{k}: {v}" for k, v in error.fields.items() if str(v) not in error.message]
        if fields:
            return f"{message} ({'; '.join(fields)})"
    return message


def _describe(error: ArgumentsError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in issue['loc']) or 'arguments'}: {issue['msg']}"
        for issue in error.errors()
    )
