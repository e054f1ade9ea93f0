"""`AsyncSandbox`: the one implementation of the sandbox client (`Sandbox` wraps it)."""

from collections.abc import Sequence
from contextlib import suppress
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import quote

from llmsafespace.contracts import NetworkAccess, Resources

from .config import ClientConfig
from .errors import NotFoundError
from .files import AsyncFiles
from .models import (
    ExecutionResult,
    SandboxInfo,
    SandboxPage,
    SandboxStatusInfo,
    SnapshotInfo,
    network_body,
    resources_body,
)
from .streaming import (
    AsyncExecutionStream,
    AsyncInstallStream,
    Mode,
    OutputCallback,
    send_once,
)
from .terminal import AsyncTerminal
from .transport import Transport

_Stream = TypeVar("_Stream", bound=AsyncExecutionStream)
EXECUTE_GRACE = 30.0  # seconds an HTTP execute may take beyond the execution's own timeout


class AsyncSandbox:
    """A sandbox on an LLMSafeSpace server.

    Create one with `await AsyncSandbox.create(...)` or attach to an existing one with
    `await AsyncSandbox.connect(id)`. `async with` terminates it on exit. The API URL and
    key come from the arguments or `LLMSAFESPACE_API_URL` / `LLMSAFESPACE_API_KEY`."""

    def __init__(self, transport: Transport, info: SandboxInfo) -> None:
        """Use `create` or `connect`; this binds an already-known sandbox to a transport."""
        self._transport = transport
        self._info = info
        self._streams: dict[str, AsyncExecutionStream] = {}
        self.files = AsyncFiles(transport, info.id)
        """Upload, download, list and delete files in the sandbox."""

    @classmethod
    async def create(
        cls,
        *,
        runtime: str | None = None,
        template: str | None = None,
        security_level: str = "standard",
        timeout: int = 300,
        resources: Resources | dict[str, Any] | None = None,
        network_access: NetworkAccess | dict[str, Any] | None = None,
        use_warm_pool: bool = True,
        metadata: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        auto_resume: bool = False,
        paused_timeout: int | None = None,
        snapshot: str | None = None,
        api_url: str | None = None,
        api_key: str | None = None,
        request_timeout: float | None = None,
    ) -> Self:
        """Create a sandbox. `timeout` is its lifetime in seconds; `resources` takes
        `cpu`, `memory` and `ephemeral_storage` (e.g. `{"cpu": 1, "memory": "512Mi"}`).
        `network_access`: outbound network, none by default; e.g. `{"enabled": True,
        "egress": [{"ports": [443], "hosts": ["pypi.org", "*.pythonhosted.org"],
        "cidrs": ["151.101.0.0/16"]}]}` (or a `NetworkAccess`); such a sandbox never
        comes from a warm pool.
        `auto_resume`: calls on it while paused resume it; `paused_timeout`: seconds it
        may stay paused (the server's default otherwise); `snapshot`: a snapshot id to start
        from (its files, packages, env and metadata; not its memory). `runtime` defaults to
        `python:3.11`; a `template` (see `AsyncTemplate`) brings its runtime, packages, files
        and env."""
        transport = Transport(ClientConfig.resolve(api_url, api_key, request_timeout))
        try:
            body: dict[str, Any] = {
                "securityLevel": security_level,
                "timeout": timeout,
                "useWarmPool": use_warm_pool,
                "metadata": metadata or {},
                "env": env or {},
                "autoResume": auto_resume,
            }
            if paused_timeout is not None:
                body["pausedTimeout"] = paused_timeout
            if snapshot is not None:
                body["snapshot"] = snapshot
            if runtime is not None:
                body["runtime"] = runtime
            if template is not None:
                body["template"] = template
            if resources is not None:
                body["resources"] = resources_body(resources)
            if network_access is not None:
                body["networkAccess"] = network_body(network_access)
            created = await transport.request(
                "POST",
                "sandboxes",
                json=body,
                timeout=transport.config.workspace_timeout if snapshot is not None else None,
            )
        except BaseException:
            await transport.aclose()
            raise
        return cls(transport, SandboxInfo.model_validate(created))

    @classmethod
    async def connect(
        cls,
        sandbox_id: str,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        request_timeout: float | None = None,
    ) -> Self:
        """Attach to an existing sandbox by id (raises `NotFoundError` if unknown)."""
        transport = Transport(ClientConfig.resolve(api_url, api_key, request_timeout))
        try:
            info = await transport.request("GET", f"sandboxes/{_path(sandbox_id)}")
        except BaseException:
            await transport.aclose()
            raise
        return cls(transport, SandboxInfo.model_validate(info))

    @staticmethod
    async def list(
        *,
        limit: int = 50,
        offset: int = 0,
        status: str | None = None,
        metadata: dict[str, str] | None = None,
        api_url: str | None = None,
        api_key: str | None = None,
    ) -> SandboxPage:
        """One page of the caller's sandboxes, newest first; `metadata` filters on labels
        (sent as `metadata.<key>=<value>` query parameters)."""
        params: dict[str, str | int] = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = status
        for key, value in (metadata or {}).items():
            params[f"metadata.{key}"] = value
        transport = Transport(ClientConfig.resolve(api_url, api_key))
        try:
            return SandboxPage.model_validate(
                await transport.request("GET", "sandboxes", params=params)
            )
        finally:
            await transport.aclose()

    @property
    def id(self) -> str:
        return self._info.id

    @property
    def info_cached(self) -> SandboxInfo:
        """The sandbox as last fetched, without a request."""
        return self._info

    async def info(self) -> SandboxInfo:
        """Fetch the sandbox afresh (status, expiry, metadata)."""
        self._info = SandboxInfo.model_validate(
            await self._transport.request("GET", f"sandboxes/{_path(self.id)}")
        )
        return self._info

    refresh = info

    async def status(self) -> SandboxStatusInfo:
        """`GET /sandboxes/{id}/status`: the lifecycle status, its detail, and the live
        resource use the runtime reports (`cpu_ms`, `memory_bytes`, `memory_limit_bytes`,
        `pids`; None where the runtime cannot tell)."""
        return SandboxStatusInfo.model_validate(
            await self._transport.request("GET", f"sandboxes/{_path(self.id)}/status")
        )

    async def set_timeout(self, seconds: int) -> SandboxInfo:
        """Set the sandbox's lifetime to `seconds` (its new expiry is in the result)."""
        reply = await self._transport.request(
            "POST", f"sandboxes/{_path(self.id)}/timeout", json={"timeout": seconds}
        )
        if isinstance(reply, dict) and "id" in reply and "ownerId" in reply:
            self._info = SandboxInfo.model_validate(reply)
            return self._info
        return await self.info()

    async def pause(self) -> SandboxInfo:
        """Freeze the sandbox (processes and memory kept, lifetime clock stopped); calls on
        it raise `SandboxPausedError` until `resume()` unless it was made with `auto_resume`.
        On Kubernetes the workspace is kept and the Pod removed: memory is not kept."""
        return await self._change("pause")

    async def resume(self) -> SandboxInfo:
        """Let a paused sandbox run again where it stopped; `memory_kept` in the result is
        false when only its files were kept (Kubernetes)."""
        return await self._change("resume")

    async def snapshot(self, name: str) -> SnapshotInfo:
        """Keep the workspace (installed packages included), env, metadata and runtime as a
        snapshot; start sandboxes from it with `create(snapshot=id)`. Memory is not kept."""
        reply = await self._transport.request(
            "POST",
            f"sandboxes/{_path(self.id)}/snapshots",
            json={"name": name},
            timeout=self._transport.config.workspace_timeout,
        )
        return SnapshotInfo.model_validate(reply)

    async def _change(self, action: str) -> SandboxInfo:
        reply = await self._transport.request(
            "POST",
            f"sandboxes/{_path(self.id)}/{action}",
            timeout=self._transport.config.workspace_timeout,
        )
        self._info = SandboxInfo.model_validate(reply)
        return self._info

    async def run_code(
        self,
        code: str,
        *,
        timeout: float = 30,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> ExecutionResult:
        """Run the runtime's language (Python by default) in the sandbox's interpreter;
        state persists between calls and a trailing expression's value is `result`. `env`
        and `cwd` apply to this call only: the next one has the interpreter's own again."""
        return await self._execute(_execute_body("code", code, timeout, env, cwd))

    async def run_command(
        self,
        command: str,
        *,
        timeout: float = 30,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> ExecutionResult:
        """Run a shell command (`/bin/sh -c`, in `/workspace` unless `cwd`)."""
        return await self._execute(_execute_body("command", command, timeout, env, cwd))

    async def install(
        self,
        packages: Sequence[str],
        *,
        manager: str = "pip",
        timeout: float = 300,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> ExecutionResult:
        """Install packages (`pip` into /workspace/.packages, importable by the next
        `run_code`; `npm` into /workspace/node_modules). Without network or a package
        mirror configured for the server this raises `ConflictError` (code
        `network_disabled`).

        With `on_stdout`/`on_stderr` the installer's output reaches them live, as for
        `stream_code` (see `stream_install`); the result is the same."""
        if on_stdout is None and on_stderr is None:
            body = {"packages": [*packages], "manager": manager, "timeout": timeout}
            reply = await self._transport.request(
                "POST", self._packages_path, json=body, timeout=timeout + EXECUTE_GRACE
            )
            return ExecutionResult.model_validate(reply)
        stream = await self.stream_install(
            packages, manager=manager, timeout=timeout, on_stdout=on_stdout, on_stderr=on_stderr
        )
        return await stream.wait()

    async def stream_install(
        self,
        packages: Sequence[str],
        *,
        manager: str = "pip",
        timeout: float = 300,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> AsyncInstallStream:
        """Start an install (`wait: false`) and follow it over the WebSocket: iterate the
        stream for the installer's `Stdout`/`Stderr` and a final `Complete`, or `await
        stream.wait()`. Its `execution_id` is known at once, so `cancel(execution_id)` can
        stop an install whose caller gave up (the installer is killed like any run)."""
        body = {"packages": [*packages], "manager": manager, "timeout": timeout, "wait": False}
        accepted = await self._transport.request("POST", self._packages_path, json=body)
        stream = AsyncInstallStream.follow(
            self._transport.config,
            self.id,
            str(accepted["executionId"]),
            on_stdout=on_stdout,
            on_stderr=on_stderr,
        )
        return self._track(stream)

    def stream_code(
        self,
        code: str,
        *,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> AsyncExecutionStream:
        """Run code as `run_code` does, streaming output live: `async for event in
        sandbox.stream_code(...)` yields `Stdout`/`Stderr` and a final `Complete` (or
        `Error`)."""
        return self._stream("code", code, timeout, env, cwd, on_stdout, on_stderr)

    def stream_command(
        self,
        command: str,
        *,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
        stdin: bool = False,
    ) -> AsyncExecutionStream:
        """Run a shell command, streaming output live (see `stream_code`). With `stdin`,
        the command reads what `stream.send_stdin(text, eof=...)` sends; without, its
        stdin is empty."""
        return self._stream("command", command, timeout, env, cwd, on_stdout, on_stderr, stdin)

    async def cancel(self, execution_id: str) -> None:
        """Cancel a running streamed execution (over its own socket when it is ours);
        `NotFoundError` when the server knows no such execution."""
        self._transport.ensure_open()
        stream = self._streams.get(execution_id)
        if stream is not None:
            await stream.cancel()
        else:
            message = {"type": "cancel", "executionId": execution_id}
            await send_once(self._transport.config, self.id, message)

    def terminal(
        self, *, cols: int = 80, rows: int = 24, terminal_id: str | None = None
    ) -> AsyncTerminal:
        """An interactive shell on a PTY: `async with sandbox.terminal() as term`, then
        `await term.send("ls\\n")`, `await term.resize(cols, rows)` and `async for text in
        term`. `terminal_id` re-attaches to a terminal left within the grace period."""
        self._transport.ensure_open()
        return AsyncTerminal(
            self._transport.config, self.id, cols=cols, rows=rows, terminal_id=terminal_id
        )

    async def terminate(self) -> SandboxInfo:
        """Terminate the sandbox: its processes are killed and its files removed. The
        client is closed with it (nothing is left to ask): later calls raise
        `ClientClosedError`, and `info_cached` is the terminated sandbox."""
        self._info = SandboxInfo.model_validate(
            await self._transport.request("DELETE", f"sandboxes/{_path(self.id)}")
        )
        await self._transport.aclose(f"sandbox {self.id} was terminated")
        return self._info

    async def close(self) -> None:
        """Release the HTTP connections (the sandbox keeps running); later calls raise
        `ClientClosedError`."""
        await self._transport.aclose(
            f"this client of sandbox {self.id} was closed: connect() to use the sandbox again"
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            with suppress(NotFoundError):
                await self.terminate()
        finally:
            await self.close()

    def __repr__(self) -> str:
        return f"AsyncSandbox(id={self.id!r}, status={self._info.status.value!r})"

    async def _execute(self, request: dict[str, Any]) -> ExecutionResult:
        """Requests are checked by the server (one source of truth); its 400 names the
        bad field and surfaces as `ValidationError`."""
        timeout = request["timeout"]
        reply = await self._transport.request(
            "POST",
            f"sandboxes/{_path(self.id)}/execute",
            json=request,
            timeout=(timeout if isinstance(timeout, int | float) else 0) + EXECUTE_GRACE,
        )
        return ExecutionResult.model_validate(reply)

    def _stream(
        self,
        mode: Mode,
        content: str,
        timeout: float | None,
        env: dict[str, str] | None,
        cwd: str | None,
        on_stdout: OutputCallback | None,
        on_stderr: OutputCallback | None,
        stdin: bool = False,
    ) -> AsyncExecutionStream:
        self._transport.ensure_open()
        stream = AsyncExecutionStream(
            self._transport.config,
            self.id,
            mode,
            content,
            timeout=timeout,
            env=env,
            cwd=cwd,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            stdin=stdin,
        )
        return self._track(stream)

    def _track(self, stream: _Stream) -> _Stream:
        """Remember a running stream, so `cancel` goes over its own socket."""
        self._streams = {k: v for k, v in self._streams.items() if v.result is None}
        self._streams[stream.execution_id] = stream
        return stream

    @property
    def _packages_path(self) -> str:
        return f"sandboxes/{_path(self.id)}/packages"


def _execute_body(
    mode: Mode, content: str, timeout: float, env: dict[str, str] | None, cwd: str | None
) -> dict[str, Any]:
    """`POST /sandboxes/{id}/execute`'s body, with only the options given."""
    body: dict[str, Any] = {"type": mode, "content": content, "timeout": timeout}
    if env is not None:
        body["env"] = env
    if cwd is not None:
        body["workingDir"] = cwd
    return body


def _path(identifier: str) -> str:
    """An id as one path segment (never lets it climb out of the route)."""
    return quote(identifier, safe="")
