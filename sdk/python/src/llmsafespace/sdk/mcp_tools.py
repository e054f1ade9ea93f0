"""The sandbox tools the MCP server offers: each one's arguments as a pydantic model (its
JSON schema is what the model reads; validating against it is what refuses wrong types)
and its implementation on the async SDK, with the caller's own credential."""

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict, Field

from .async_sandbox import AsyncSandbox
from .config import ClientConfig
from .errors import LLMSafeSpaceError, NotFoundError, ValidationError, error_from_envelope
from .events import Error, Stderr, Stdout
from .models import ExecutionResult
from .streaming import AsyncExecutionStream
from .tools import WORKSPACE, file_part_result, read_length, workspace_path

MAX_OUTPUT_CHARS = 20_000
MAX_FILE_BYTES = 20_000
"""The most `read_file` reads and returns in one call (it never reads a whole file)."""
MAX_GUESSED = 6  # running sandboxes listed when a call names none (five named, then "...")
OutputSink = Callable[[str, str], Awaitable[None]]
"""Called with (stream, text) for each chunk of a running execution's output."""

SandboxId = Annotated[
    str | None,
    Field(
        description="The sandbox to use. Omit it to use the one this session created or "
        "last used in a call that succeeded, where the server keeps sessions (stdio); else "
        "your only running sandbox. With several running, name one: calls never guess "
        "between them."
    ),
]
Timeout = Annotated[
    float, Field(gt=0, le=3600, description="Seconds before the run is stopped (default 30).")
]
FilePath = Annotated[
    str,
    Field(
        min_length=1,
        description="Absolute (in /workspace or /tmp) or relative to /workspace.",
    ),
]


class Arguments(BaseModel):
    """Tool arguments: unknown names and wrong types are refused, nothing is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class CreateSandbox(Arguments):
    runtime: str | None = Field(
        default=None,
        description="Runtime: python:3.11 (the default), python:3.11-data (numpy, pandas, "
        "matplotlib...) or node:20. Not with a template, which brings its own.",
    )
    template: str | None = Field(
        default=None,
        description="A ready template's name: its packages and files are there at once.",
    )
    timeout: int = Field(
        default=600, ge=1, le=86400, description="Lifetime of the sandbox in seconds."
    )


class RunCode(Arguments):
    code: str = Field(
        min_length=1, description="Source to run: Python, or JavaScript in a node:20 sandbox."
    )
    timeout: Timeout = 30
    sandbox_id: SandboxId = None


class RunCommand(Arguments):
    command: str = Field(min_length=1, description="The shell command line (/bin/sh -c).")
    timeout: Timeout = 30
    cwd: str | None = Field(default=None, description="Working directory (absolute).")
    sandbox_id: SandboxId = None


class ReadFile(Arguments):
    path: FilePath
    offset: int = Field(
        default=0,
        ge=0,
        description="The byte to start at (default 0, the beginning). A read that stops "
        "short of the end gives the next one's offset.",
    )
    length: int = Field(
        default=MAX_FILE_BYTES,
        ge=1,
        le=MAX_FILE_BYTES,
        description=f"At most this many bytes (default and limit {MAX_FILE_BYTES}). A part "
        "never ends inside a character: one cut by the limit starts the next part instead, "
        "and a length smaller than the first character gives that whole character.",
    )
    sandbox_id: SandboxId = None


class WriteFile(Arguments):
    path: FilePath
    content: str = Field(description="The whole new content (UTF-8 text).")
    sandbox_id: SandboxId = None


class ListFiles(Arguments):
    path: FilePath = WORKSPACE
    sandbox_id: SandboxId = None


class InstallPackages(Arguments):
    packages: list[str] = Field(min_length=1, description="Package specs, e.g. ['numpy'].")
    manager: Literal["pip", "npm"] = "pip"
    sandbox_id: SandboxId = None


class ListSandboxes(Arguments):
    status: str | None = Field(default=None, description="Only these, e.g. running.")


class TerminateSandbox(Arguments):
    sandbox_id: SandboxId = None


@dataclass(frozen=True)
class ToolDefinition:
    name: str
    description: str
    arguments: type[Arguments]


TOOLS: tuple[ToolDefinition, ...] = (
    ToolDefinition(
        "create_sandbox",
        "Create an isolated sandbox (a Linux container with Python) and make it this "
        "session's default. Returns its id.",
        CreateSandbox,
    ),
    ToolDefinition(
        "run_code",
        "Run code in the sandbox's persistent interpreter (Python; JavaScript in a node:20 "
        "sandbox): variables, imports and functions survive between calls. Returns stdout, "
        "stderr, the value of a trailing expression, the exception if one was raised, and "
        "images/rich output.",
        RunCode,
    ),
    ToolDefinition(
        "run_command",
        "Run a shell command in the sandbox (in /workspace by default). Returns stdout, "
        "stderr and the exit code.",
        RunCommand,
    ),
    ToolDefinition(
        "read_file",
        f"Read a text file from the sandbox, from the beginning (or `offset`), at most "
        f"{MAX_FILE_BYTES} bytes a call. Returns the file's size; when more follows, "
        "`truncated` is true and `next_offset` is where to continue: the parts read on "
        "from each `next_offset` join up to the exact text.",
        ReadFile,
    ),
    ToolDefinition(
        "write_file",
        "Write a text file in the sandbox, replacing it; parent directories are created.",
        WriteFile,
    ),
    ToolDefinition(
        "list_files",
        "List a directory of the sandbox: its entries and `truncated`, true when it held "
        "more than one listing carries (some 4,500 entries; the first by name are kept).",
        ListFiles,
    ),
    ToolDefinition(
        "install_packages",
        "Install packages in the sandbox (pip: importable by the next run_code; npm: into "
        "/workspace/node_modules).",
        InstallPackages,
    ),
    ToolDefinition("list_sandboxes", "List your sandboxes, newest first.", ListSandboxes),
    ToolDefinition(
        "terminate_sandbox",
        "Terminate a sandbox: its processes are killed and its files removed.",
        TerminateSandbox,
    ),
)


class SandboxSession:
    """One MCP session's view of the platform: the caller's credential and the sandbox
    the session uses when a call names none (the last one it created or used in a call
    that succeeded). Over Streamable HTTP each request is a session of its own (the
    gateway keeps none)."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.default_sandbox: str | None = None

    async def sandbox(self, sandbox_id: str | None) -> AsyncSandbox:
        """The named sandbox, else the session's, else the caller's only running one."""
        identifier = sandbox_id or self.default_sandbox or await self._only_running()
        try:
            sandbox = await AsyncSandbox.connect(identifier, **self._credential())
        except NotFoundError as exc:
            raise NotFoundError(f"no such sandbox: {identifier}", code="not_found") from exc
        return sandbox

    @asynccontextmanager
    async def _using(self, sandbox_id: str | None) -> AsyncIterator[AsyncSandbox]:
        """`sandbox(sandbox_id)` for one call, made the session's default once the call
        succeeded: `connect` does not check the status, so a call that failed (say on a
        terminated sandbox) must not leave later calls going to it."""
        async with _closing(await self.sandbox(sandbox_id)) as sandbox:
            yield sandbox
        self.default_sandbox = sandbox.id

    async def _only_running(self) -> str:
        """The caller's one running sandbox; none, or several, is an error saying what to do
        (running code in a sandbox the model did not mean would be worse)."""
        page = await AsyncSandbox.list(limit=MAX_GUESSED, status="running", **self._credential())
        ids = [sandbox.id for sandbox in page.sandboxes]
        if not ids:
            raise NotFoundError("no sandbox yet: call create_sandbox first", code="not_found")
        if len(ids) > 1:
            listed = ", ".join(ids[: MAX_GUESSED - 1]) + (
                ", ..." if len(ids) == MAX_GUESSED else ""
            )
            raise ValidationError(
                f"several sandboxes are running ({listed}): pass sandbox_id",
                code="invalid_request",
            )
        return ids[0]

    async def create(self, args: CreateSandbox) -> dict[str, Any]:
        sandbox = await AsyncSandbox.create(
            runtime=args.runtime,
            template=args.template,
            timeout=args.timeout,
            metadata={"createdBy": "mcp"},
            **self._credential(),
        )
        await sandbox.close()
        self.default_sandbox = sandbox.id
        info = sandbox.info_cached
        return {"sandbox_id": sandbox.id, "status": info.status.value, "runtime": info.runtime}

    async def execute(
        self, args: RunCode | RunCommand, on_output: OutputSink | None
    ) -> ExecutionResult:
        """Streamed, so output can be relayed as it happens; if the caller is cancelled
        the execution is cancelled too."""
        async with self._using(args.sandbox_id) as sandbox:
            if isinstance(args, RunCode):
                stream = sandbox.stream_code(args.code, timeout=args.timeout)
            else:
                stream = sandbox.stream_command(args.command, timeout=args.timeout, cwd=args.cwd)
            return await _followed(sandbox, stream, on_output)

    async def read_file(self, args: ReadFile) -> dict[str, Any]:
        path = workspace_path(args.path)
        async with self._using(args.sandbox_id) as sandbox:
            part = await sandbox.files.read_part(path, args.offset, read_length(args.length))
        return file_part_result(path, part, args.length)

    async def write_file(self, args: WriteFile) -> dict[str, Any]:
        path = workspace_path(args.path)
        async with self._using(args.sandbox_id) as sandbox:
            written = await sandbox.files.write(path, args.content)
        return {"path": path, "size": written.size}

    async def list_files(self, args: ListFiles) -> dict[str, Any]:
        path = workspace_path(args.path)
        async with self._using(args.sandbox_id) as sandbox:
            entries = await sandbox.files.list(path)
        return {
            "path": path,
            "entries": [
                {"name": e.name, "size": e.size, "is_directory": e.is_directory} for e in entries
            ],
            "truncated": entries.truncated,  # the first entries by name: list below for more
        }

    async def install_packages(
        self, args: InstallPackages, on_output: OutputSink | None
    ) -> ExecutionResult:
        """Streamed like `execute`: the installer's output is relayed as it comes, and a
        cancelled caller cancels the install."""
        async with self._using(args.sandbox_id) as sandbox:
            stream = await sandbox.stream_install(args.packages, manager=args.manager)
            return await _followed(sandbox, stream, on_output)

    async def list_sandboxes(self, args: ListSandboxes) -> dict[str, Any]:
        page = await AsyncSandbox.list(limit=50, status=args.status, **self._credential())
        return {
            "sandboxes": [
                {
                    "sandbox_id": s.id,
                    "status": s.status.value,
                    "runtime": s.runtime,
                    "created_at": s.created_at.isoformat(),
                }
                for s in page.sandboxes
            ],
            "default_sandbox": self.default_sandbox,
        }

    async def terminate(self, args: TerminateSandbox) -> dict[str, Any]:
        """Not `_using`: a terminated sandbox never becomes the default, and terminating
        another one leaves the default alone."""
        async with _closing(await self.sandbox(args.sandbox_id)) as sandbox:
            info = await sandbox.terminate()
        if self.default_sandbox == sandbox.id:
            self.default_sandbox = None
        return {"sandbox_id": sandbox.id, "status": info.status.value}

    def _credential(self) -> dict[str, Any]:
        return {"api_url": self.config.api_url, "api_key": self.config.api_key}


async def _followed(
    sandbox: AsyncSandbox, stream: AsyncExecutionStream, on_output: OutputSink | None
) -> ExecutionResult:
    """The stream's result, each output chunk passed to `on_output` on the way; a caller
    that goes away before the end cancels the execution. An `error` the platform sent
    instead of a result (e.g. code it refused) is raised with its code and message."""
    refused: Error | None = None
    try:
        async for event in stream:
            if isinstance(event, Error):
                refused = event
            elif on_output is not None and isinstance(event, Stdout | Stderr):
                kind = "stdout" if isinstance(event, Stdout) else "stderr"
                await on_output(kind, event.text)
    except BaseException:
        if stream.result is None:
            await cancel_quietly(sandbox, stream.execution_id)
        raise
    if refused is not None:
        raise error_from_envelope({"error": {"code": refused.code, "message": refused.message}})
    return await stream.wait()


async def cancel_quietly(sandbox: AsyncSandbox, execution_id: str) -> None:
    """Cancel an execution whose caller went away; shielded from the caller's own
    cancellation, and never raising (the execution may have just ended)."""
    with (
        anyio.CancelScope(shield=True),
        anyio.move_on_after(10),
        suppress(LLMSafeSpaceError),
    ):
        await sandbox.cancel(execution_id)


class _closing:
    """`async with _closing(sandbox)`: its HTTP connections are released on exit."""

    def __init__(self, sandbox: AsyncSandbox) -> None:
        self._sandbox = sandbox

    async def __aenter__(self) -> AsyncSandbox:
        return self._sandbox

    async def __aexit__(self, *_: object) -> None:
        await self._sandbox.close()
