"""`Sandbox`: the synchronous client. Every method runs `AsyncSandbox`'s on the SDK's
background loop; there is no second implementation."""

import weakref
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Self

from llmsafespace.contracts import NetworkAccess, Resources

from .async_sandbox import AsyncSandbox
from .events import Event
from .files import Files
from .models import ExecutionResult, SandboxInfo, SandboxPage, SandboxStatusInfo, SnapshotInfo
from .portal import Portal, run_sync, start_soon
from .streaming import AsyncExecutionStream, OutputCallback
from .terminal import Terminal


class ExecutionStream:
    """A streamed execution for synchronous code: iterate it for events, or `wait()`."""

    def __init__(self, portal: Portal, stream: AsyncExecutionStream) -> None:
        self._portal = portal
        self._stream = stream

    @property
    def execution_id(self) -> str:
        return self._stream.execution_id

    @property
    def result(self) -> ExecutionResult | None:
        """The result once the stream has completed."""
        return self._stream.result

    def __iter__(self) -> Iterator[Event]:
        return self._portal.iterate(aiter(self._stream))

    def wait(self) -> ExecutionResult:
        """Consume the rest of the stream; the result, or the error as an exception."""
        return self._portal.call(self._stream.wait())

    def cancel(self) -> None:
        """Cancel the execution; the stream ends with a `cancelled` `Complete`."""
        self._portal.call(self._stream.cancel())

    def send_stdin(self, data: str, *, eof: bool = False) -> None:
        """Feed the stdin of a command streamed with `stdin=True`; before the stream is
        iterated or waited for, this starts the command (see
        `AsyncExecutionStream.send_stdin`)."""
        self._portal.call(self._stream.send_stdin(data, eof=eof))


class Sandbox:
    """A sandbox on an LLMSafeSpace server, for synchronous code.

    `Sandbox(...)` (or `Sandbox.create(...)`) creates one; `Sandbox.connect(id)` attaches
    to an existing one; `with Sandbox() as sandbox:` terminates it on exit. The API URL
    and key come from the arguments or `LLMSAFESPACE_API_URL` / `LLMSAFESPACE_API_KEY`.

    Its connections are released by `terminate()`, `close()` or the end of the `with`
    block (later calls raise `ClientClosedError`), and once the object, its `files` and
    its streams are all unreferenced. Every `Sandbox` runs on one background thread."""

    _portal: Portal
    _sandbox: AsyncSandbox

    def __init__(
        self,
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
    ) -> None:
        """Create a sandbox (see `AsyncSandbox.create` for the arguments)."""
        self._bind(
            lambda: AsyncSandbox.create(
                runtime=runtime,
                template=template,
                security_level=security_level,
                timeout=timeout,
                resources=resources,
                network_access=network_access,
                use_warm_pool=use_warm_pool,
                metadata=metadata,
                env=env,
                auto_resume=auto_resume,
                paused_timeout=paused_timeout,
                snapshot=snapshot,
                api_url=api_url,
                api_key=api_key,
                request_timeout=request_timeout,
            )
        )

    @classmethod
    def create(cls, **options: Any) -> Self:
        """Create a sandbox; the same as `Sandbox(**options)`."""
        return cls(**options)

    @classmethod
    def connect(
        cls,
        sandbox_id: str,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        request_timeout: float | None = None,
    ) -> Self:
        """Attach to an existing sandbox by id (raises `NotFoundError` if unknown)."""
        sandbox = cls.__new__(cls)
        sandbox._bind(
            lambda: AsyncSandbox.connect(
                sandbox_id, api_url=api_url, api_key=api_key, request_timeout=request_timeout
            )
        )
        return sandbox

    @staticmethod
    def list(
        *,
        limit: int = 50,
        offset: int = 0,
        status: str | None = None,
        metadata: dict[str, str] | None = None,
        api_url: str | None = None,
        api_key: str | None = None,
    ) -> SandboxPage:
        """One page of the caller's sandboxes (see `AsyncSandbox.list`)."""
        return run_sync(
            AsyncSandbox.list(
                limit=limit,
                offset=offset,
                status=status,
                metadata=metadata,
                api_url=api_url,
                api_key=api_key,
            )
        )

    def _bind(self, make: Any) -> None:
        self._portal = Portal()
        self._sandbox = self._portal.call(make())
        # The files and streams hold this portal too: once nothing does, nothing can use
        # the connections, which the background loop would otherwise keep open forever.
        release = weakref.finalize(self._portal, start_soon, self._sandbox.close)
        release.atexit = False  # the process is ending: its sockets go with it
        self.files = Files(self._portal, self._sandbox.files)
        """Upload, download, list and delete files in the sandbox."""

    def install(
        self,
        packages: Sequence[str],
        *,
        manager: str = "pip",
        timeout: float = 300,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> ExecutionResult:
        """Install packages (see `AsyncSandbox.install`; callbacks run on the SDK's loop
        thread, as for `stream_code`)."""
        return self._portal.call(
            self._sandbox.install(
                packages,
                manager=manager,
                timeout=timeout,
                on_stdout=on_stdout,
                on_stderr=on_stderr,
            )
        )

    @property
    def id(self) -> str:
        return self._sandbox.id

    @property
    def info_cached(self) -> SandboxInfo:
        """The sandbox as last fetched, without a request."""
        return self._sandbox.info_cached

    def info(self) -> SandboxInfo:
        """Fetch the sandbox afresh (status, expiry, metadata)."""
        return self._portal.call(self._sandbox.info())

    refresh = info

    def status(self) -> SandboxStatusInfo:
        """`GET /sandboxes/{id}/status`: the lifecycle status, its detail, and the live
        resource use the runtime reports (None where it cannot tell)."""
        return self._portal.call(self._sandbox.status())

    def set_timeout(self, seconds: int) -> SandboxInfo:
        """Set the sandbox's lifetime to `seconds`."""
        return self._portal.call(self._sandbox.set_timeout(seconds))

    def pause(self) -> SandboxInfo:
        """Freeze the sandbox, processes and memory kept (see `AsyncSandbox.pause`)."""
        return self._portal.call(self._sandbox.pause())

    def resume(self) -> SandboxInfo:
        """Let a paused sandbox run again."""
        return self._portal.call(self._sandbox.resume())

    def snapshot(self, name: str) -> SnapshotInfo:
        """Keep the workspace, env, metadata and runtime (see `AsyncSandbox.snapshot`)."""
        return self._portal.call(self._sandbox.snapshot(name))

    def run_code(
        self,
        code: str,
        *,
        timeout: float = 30,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> ExecutionResult:
        """Run Python (the runtime's language) in the sandbox's interpreter; state
        persists between calls, `env` and `cwd` apply to this call only."""
        return self._portal.call(self._sandbox.run_code(code, timeout=timeout, env=env, cwd=cwd))

    def run_command(
        self,
        command: str,
        *,
        timeout: float = 30,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> ExecutionResult:
        """Run a shell command (`/bin/sh -c`, in `/workspace` unless `cwd`)."""
        return self._portal.call(
            self._sandbox.run_command(command, timeout=timeout, env=env, cwd=cwd)
        )

    def stream_code(
        self,
        code: str,
        *,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> ExecutionStream:
        """Run code as `run_code` does, streaming output live (callbacks run on the SDK's
        loop thread, shared by every `Sandbox`: keep them short)."""
        stream = self._sandbox.stream_code(
            code, timeout=timeout, env=env, cwd=cwd, on_stdout=on_stdout, on_stderr=on_stderr
        )
        return ExecutionStream(self._portal, stream)

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
    ) -> ExecutionStream:
        """Run a shell command, streaming output live (`stdin`: see `AsyncSandbox`)."""
        stream = self._sandbox.stream_command(
            command,
            timeout=timeout,
            env=env,
            cwd=cwd,
            on_stdout=on_stdout,
            on_stderr=on_stderr,
            stdin=stdin,
        )
        return ExecutionStream(self._portal, stream)

    def stream_install(
        self,
        packages: Sequence[str],
        *,
        manager: str = "pip",
        timeout: float = 300,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> ExecutionStream:
        """Start an install and follow its output (see `AsyncSandbox.stream_install`)."""
        stream = self._portal.call(
            self._sandbox.stream_install(
                packages,
                manager=manager,
                timeout=timeout,
                on_stdout=on_stdout,
                on_stderr=on_stderr,
            )
        )
        return ExecutionStream(self._portal, stream)

    def cancel(self, execution_id: str) -> None:
        """Cancel a running streamed execution (`NotFoundError` if the server knows none
        by that id)."""
        self._portal.call(self._sandbox.cancel(execution_id))

    def terminal(
        self, *, cols: int = 80, rows: int = 24, terminal_id: str | None = None
    ) -> Terminal:
        """An interactive shell on a PTY: `with sandbox.terminal() as term:`, then
        `term.send("ls\\n")` and `for text in term` (see `AsyncSandbox.terminal`)."""
        terminal = self._sandbox.terminal(cols=cols, rows=rows, terminal_id=terminal_id)
        return Terminal(self._portal, terminal)

    def terminate(self) -> SandboxInfo:
        """Terminate the sandbox: its processes are killed and its files removed. This
        client is closed with it: later calls raise `ClientClosedError`."""
        return self._portal.call(self._sandbox.terminate())

    def close(self) -> None:
        """Release the connections (the sandbox keeps running); later calls raise
        `ClientClosedError`."""
        self._portal.call(self._sandbox.close())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._portal.call(self._sandbox.__aexit__(exc_type, exc, tb))

    def __repr__(self) -> str:
        return f"Sandbox(id={self.id!r}, status={self.info_cached.status.value!r})"
