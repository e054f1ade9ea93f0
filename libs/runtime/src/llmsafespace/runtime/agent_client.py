"""Client for the in-sandbox agent: one connection, many concurrent requests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from llmsafespace.agent.frames import DISPLAY_KEYS, TERMINAL, Op, Outcome, Reply
from llmsafespace.agent.protocol import Frame, ProtocolError, encode, read_frame

from .agent_transfers import Download, Upload, failure
from .errors import AgentUnavailable, DriverError

OutputCallback = Callable[[str, str], Awaitable[None]]
"""Receives output as it arrives: (stream, text)."""

DisplayCallback = Callable[[Frame], Awaitable[None]]
"""Receives rich results as they arrive, in order with output: {data, isMainResult, truncated}."""

StdinQueue = asyncio.Queue[tuple[str, bool]]
"""Input for a running command, in order: (text, eof); eof closes its stdin."""

ControlQueue = asyncio.Queue[Frame]
"""Frames for a running terminal, in order: `{"op": Op.STDIN, "data"}` or
`{"op": Op.RESIZE, "cols", "rows"}`."""

GRACE = 5.0
"""How long past an execution's own timeout the client waits for the agent's answer."""

KEPT_OUTPUT = 2**20
"""Characters of each output stream an execution's result keeps (callers clip further and
say so); ``on_output`` sees all of it. The agent is in the sandbox: its output is not
buffered without bound in the service that runs every tenant's executions."""

_UNIX = "unix://"
_TCP = "tcp://"
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class AgentResult:
    """The whole outcome of one execution: the agent's ``Outcome`` (its fields, by the
    same names), the output it streamed and its rich results."""

    status: str
    exit_code: int
    stdout: str
    stderr: str
    result: str | None
    error: dict[str, str] | None
    ended_by: str
    wall_ms: float
    cpu_ms: float
    peak_memory_bytes: int
    results: tuple[Frame, ...] = ()
    """Rich results in display order: {data, isMainResult, truncated}."""


class AgentClient:
    """An authenticated connection to one agent."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Queue[Frame | None]] = {}
        self._closed = False
        self._reader_task = asyncio.create_task(self._read(reader))

    @classmethod
    async def connect(cls, endpoint: str, token: str, *, timeout: float = 5.0) -> AgentClient:
        """Connect to ``unix:///path`` or ``tcp://host:port`` and authenticate with ``token``."""
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await _open(endpoint)
        except (OSError, TimeoutError) as exc:
            raise AgentUnavailable(f"cannot reach the agent at {endpoint}: {exc!r}") from exc
        try:
            async with asyncio.timeout(timeout):
                writer.write(encode({"op": Op.HELLO, "token": token}))
                reply, _ = await read_frame(reader)
            if reply.get("ok") is not True:
                raise ProtocolError(f"unexpected hello reply {reply!r}")
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ProtocolError) as exc:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            raise AgentUnavailable(f"the agent at {endpoint} refused the connection") from exc
        return cls(reader, writer)

    @property
    def closed(self) -> bool:
        """True once the connection is gone."""
        return self._closed

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                frame, body = await read_frame(reader)
                if body:
                    frame["body"] = body
                request_id = frame.get("id")
                queue = self._pending.get(request_id) if isinstance(request_id, int) else None
                if queue is not None:
                    queue.put_nowait(frame)
        except (OSError, asyncio.IncompleteReadError, ProtocolError):
            pass
        finally:
            self._closed = True
            self._writer.close()  # the agent is gone: release the socket now
            for queue in self._pending.values():
                queue.put_nowait(None)

    async def _cancel_when(self, cancel: asyncio.Event, request_id: int) -> None:
        await cancel.wait()
        with contextlib.suppress(ConnectionError):
            self._writer.write(
                encode({"op": Op.CANCEL, "target": request_id, "id": next(self._ids)})
            )

    async def _stdin_from(self, stdin: StdinQueue, request_id: int) -> None:
        while True:
            text, eof = await stdin.get()
            frame = {"op": Op.STDIN, "target": request_id, "data": text, "eof": eof}
            with contextlib.suppress(ConnectionError):
                self._writer.write(encode({**frame, "id": next(self._ids)}))
            if eof:
                return

    async def _control_from(self, control: ControlQueue, request_id: int) -> None:
        while True:
            frame = await control.get()
            with contextlib.suppress(ConnectionError):
                self._writer.write(encode({**frame, "target": request_id, "id": next(self._ids)}))

    async def _request(
        self,
        request: Frame,
        deadline: float,
        on_frame: Callable[[Frame], Awaitable[None]],
        cancel: asyncio.Event | None = None,
        stdin: StdinQueue | None = None,
        control: ControlQueue | None = None,
    ) -> Frame:
        """Send ``request``; pass every reply to ``on_frame``; return the terminal one.
        Setting ``cancel`` asks the agent to stop the request (it still answers, cancelled)."""
        if self._closed:
            raise AgentUnavailable("the agent connection is closed")
        request_id = next(self._ids)
        queue: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._pending[request_id] = queue
        canceller = asyncio.create_task(self._cancel_when(cancel, request_id)) if cancel else None
        feeder = None
        try:
            self._writer.write(encode({**request, "id": request_id}))
            if stdin is not None:  # after the request, so the agent knows the target
                feeder = asyncio.create_task(self._stdin_from(stdin, request_id))
            elif control is not None:
                feeder = asyncio.create_task(self._control_from(control, request_id))
            async with asyncio.timeout(deadline):
                await self._writer.drain()
                while True:
                    frame = await queue.get()
                    if frame is None:
                        raise AgentUnavailable("the agent connection was lost")
                    if frame.get("type") in TERMINAL:
                        break
                    await on_frame(frame)
        except TimeoutError as exc:
            raise AgentUnavailable(f"the agent did not answer within {deadline:g} s") from exc
        except ConnectionError as exc:
            raise AgentUnavailable(f"the agent connection failed: {exc!r}") from exc
        finally:
            del self._pending[request_id]
            if canceller is not None:
                canceller.cancel()
            if feeder is not None:
                feeder.cancel()
        if frame.get("type") == Reply.ERROR:
            raise failure(frame)
        return frame

    async def _execute(
        self,
        request: Frame,
        timeout: float,
        on_output: OutputCallback | None,
        cancel: asyncio.Event | None,
        stdin: StdinQueue | None = None,
        on_display: DisplayCallback | None = None,
        control: ControlQueue | None = None,
    ) -> AgentResult:
        output: dict[str, list[str]] = {"stdout": [], "stderr": []}
        results: list[Frame] = []
        kept = dict.fromkeys(output, 0)

        async def on_frame(frame: Frame) -> None:
            if frame.get("type") == Reply.DISPLAY:
                bundle = {key: frame.get(key) for key in DISPLAY_KEYS}
                results.append(bundle)
                if on_display is not None:
                    await on_display(bundle)
                return
            stream, text = str(frame.get("stream")), str(frame.get("data", ""))
            if stream in output and kept[stream] < KEPT_OUTPUT:
                output[stream].append(text[: KEPT_OUTPUT - kept[stream]])
                kept[stream] += len(output[stream][-1])
            if on_output is not None:
                await on_output(stream, text)

        final = await self._request(
            {**request, "timeout": timeout}, timeout + GRACE, on_frame, cancel, stdin, control
        )
        try:
            outcome = Outcome.from_frame(final)
        except (KeyError, TypeError, ValueError) as exc:
            raise AgentUnavailable(f"the agent sent a malformed result: {exc!r}") from exc
        return AgentResult(
            status=outcome.status,
            exit_code=outcome.exit_code,
            stdout="".join(output["stdout"]),
            stderr="".join(output["stderr"]),
            result=outcome.result,
            error=outcome.error,
            ended_by=outcome.ended_by,
            wall_ms=outcome.usage.wall_ms,
            cpu_ms=outcome.usage.cpu_ms,
            peak_memory_bytes=outcome.usage.peak_memory_bytes,
            results=tuple(results),
        )

    async def run_code(
        self,
        code: str,
        *,
        timeout: float,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_output: OutputCallback | None = None,
        cancel: asyncio.Event | None = None,
        on_display: DisplayCallback | None = None,
        execution_id: str | None = None,
    ) -> AgentResult:
        """Run code in the sandbox's persistent interpreter (with ``env`` added to its
        environment and in ``cwd``, for this cell only); setting ``cancel`` stops it. Its
        rich results (``display``, figures, the trailing value) also go to ``on_display``.
        ``execution_id``: refused (`conflict`) if the sandbox ran one of that id already."""
        request: Frame = {"op": Op.RUN_CODE, "code": code}
        if env:
            request["env"] = env
        if cwd:
            request["cwd"] = cwd
        if execution_id:
            request["executionId"] = execution_id
        return await self._execute(request, timeout, on_output, cancel, on_display=on_display)

    async def run_command(
        self,
        command: str,
        *,
        timeout: float,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        on_output: OutputCallback | None = None,
        cancel: asyncio.Event | None = None,
        stdin: StdinQueue | None = None,
        execution_id: str | None = None,
    ) -> AgentResult:
        """Run ``/bin/sh -c command`` in the sandbox; setting ``cancel`` stops it. With
        ``stdin`` the command reads what is put on that queue, else its stdin is empty;
        ``execution_id`` as for ``run_code``."""
        request: Frame = {"op": Op.RUN_COMMAND, "command": command, "env": env, "cwd": cwd}
        if stdin is not None:
            request["stdin"] = True
        if execution_id:
            request["executionId"] = execution_id
        return await self._execute(request, timeout, on_output, cancel, stdin)

    async def terminal(
        self,
        *,
        cols: int,
        rows: int,
        timeout: float,
        on_output: OutputCallback,
        control: ControlQueue,
        cancel: asyncio.Event,
    ) -> AgentResult:
        """The user's shell on a PTY until it exits (or ``cancel`` hangs it up); its
        output reaches ``on_output``; keystrokes and resizes are put on ``control``."""
        request: Frame = {"op": Op.OPEN_TERMINAL, "cols": cols, "rows": rows}
        return await self._execute(request, timeout, on_output, cancel, control=control)

    async def set_env(self, env: dict[str, str]) -> None:
        """Add ``env`` to the environment of later code and commands (a claimed warm
        sandbox's customisation; its interpreter keeps its state)."""
        await self._request({"op": Op.SET_ENV, "env": env}, GRACE, _ignore)

    async def list_files(self, path: str, *, recursive: bool = False) -> Frame:
        """``{path, files: [...], truncated}`` for a directory in the sandbox."""
        request = {"op": Op.LIST_FILES, "path": path, "recursive": recursive}
        return await self._request(request, GRACE * 6, _ignore)

    async def delete_file(self, path: str, *, recursive: bool = False) -> Frame:
        """Remove a file, or a directory (its contents too with ``recursive``)."""
        request = {"op": Op.DELETE_FILE, "path": path, "recursive": recursive}
        return await self._request(request, GRACE * 6, _ignore)

    async def open_write(
        self, path: str, *, archive: bool = False, max_bytes: int | None = None
    ) -> Upload:
        """Start writing ``path`` (with ``archive``: a tar.gz unpacked into it)."""
        request = {"op": Op.WRITE_FILE, "path": path, "archive": archive, "maxBytes": max_bytes}
        upload = Upload(*self._open(request), self._write, self._forget)
        await self._start(upload)
        return upload

    async def open_read(
        self, path: str, *, offset: int = 0, length: int | None = None, archive: bool = False
    ) -> Download:
        """Start reading ``path`` (with ``archive``: the directory as tar.gz)."""
        request = {
            "op": Op.READ_FILE,
            "path": path,
            "offset": offset,
            "length": length,
            "archive": archive,
        }
        download = Download(*self._open(request), self._write, self._forget)
        await self._start(download)
        return download

    def _open(self, request: Frame) -> tuple[int, asyncio.Queue[Frame | None]]:
        if self._closed:
            raise AgentUnavailable("the agent connection is closed")
        request_id = next(self._ids)
        queue: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._pending[request_id] = queue
        self._writer.write(encode({**request, "id": request_id}))
        return request_id, queue

    async def _start(self, transfer: Upload | Download) -> None:
        try:
            await transfer.start()
        except BaseException:
            await transfer.abort()
            raise

    async def _write(self, data: bytes) -> None:
        if self._closed:
            raise AgentUnavailable("the agent connection is closed")
        self._writer.write(data)
        try:
            await self._writer.drain()
        except ConnectionError as exc:
            raise AgentUnavailable(f"the agent connection failed: {exc!r}") from exc

    def _forget(self, request_id: int) -> None:
        self._pending.pop(request_id, None)

    async def ping(self) -> None:
        """Check the agent answers."""
        await self._request({"op": Op.PING}, GRACE, _ignore)

    async def close(self) -> None:
        """Close the connection; pending requests fail with AgentUnavailable."""
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
        await self._reader_task


async def _open(endpoint: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A stream to the agent at ``unix:///path`` or ``tcp://host:port`` (``[v6]:port``)."""
    if endpoint.startswith(_UNIX):
        return await asyncio.open_unix_connection(sock=await _unix_socket(endpoint[len(_UNIX) :]))
    if endpoint.startswith(_TCP):
        host, _, port = endpoint[len(_TCP) :].rpartition(":")
        if host and port.isdigit():
            return await asyncio.open_connection(host.strip("[]"), int(port))
    raise DriverError(f"unsupported agent endpoint {endpoint!r}")


async def _ignore(frame: Frame) -> None:
    """Replies other than the final one are not expected for this request."""


async def _unix_socket(path: str) -> socket.socket:
    """Connect to the socket at ``path`` only if it is what the agent made there.

    The agent runs inside the sandbox: its socket file must not be a symlink (opened
    with O_NOFOLLOW, connected through that very inode), must sit in a directory its uid
    cannot write (the driver gives the run dir to root once the socket exists), and the
    listening peer must be the uid that owns the socket (SO_PEERCRED) — so a sandbox
    can neither point the client at a host socket nor swap in a listener of its own.
    Nothing is sent before these checks pass."""
    directory = os.stat(os.path.dirname(path) or ".")
    if directory.st_uid not in (0, os.geteuid()) or directory.st_mode & 0o022:
        raise PermissionError(f"{os.path.dirname(path)} is writable by others than us")
    fd = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        owner = os.fstat(fd)
        if not stat.S_ISSOCK(owner.st_mode):
            raise PermissionError(f"{path} is not a socket")
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, f"/proc/self/fd/{fd}")
        credentials = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        _, peer_uid, _ = _PEERCRED.unpack(credentials)
        if peer_uid != owner.st_uid:
            raise PermissionError(f"{path} is served by uid {peer_uid}, not its owner")
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(fd)
    return sock
