"""The agent's socket server: authenticates each connection, then multiplexes requests by id.

Threads, not an event loop (asyncio alone costs every sandbox ~5 MB and ~40 ms of start):
the main thread accepts; one thread at a time reads a connection's frames, and a reader
that reads a request hands reading on to another thread (a waiting one, see ``threads``)
and serves the request itself (leader and follower): no thread is woken, let alone
started, between a request's arrival and its run (~0.1 ms of every execution's round
trip). Frames leave whole under one lock per connection. Files, commands and terminals
are imported on their first request: a sandbox that only runs code never loads them
(~0.2 MB of its idle PSS, ~1 ms of its start). For the same reason the server is built on
the C modules under ``socket``, ``threading`` and ``queue`` (``_socket``, ``_thread``,
``_queue``): those wrappers cost each sandbox ~0.7 MB between them (see ``threads``).
"""

from __future__ import annotations

import _socket
import _thread
import contextlib
import os
import sys
import time
from _operator import _compare_digest as compare_digest  # hmac's, without OpenSSL
from _queue import SimpleQueue
from collections.abc import Callable

from . import threads
from .cancel import Cancel
from .frames import Op, Outcome, Reply
from .interpreter import Interpreter
from .paths import FileError
from .protocol import TYPE_CHECKING, Frame, FrameTooLarge, ProtocolError, encode, read_frame_sync

LISTEN_BACKLOG = 128
ACCEPT_RETRY = 0.05  # seconds, after accept failed (e.g. EMFILE: the connection waits)
PIDS_WAIT = 2.0  # seconds for the pids a reclaimed interpreter held to come free
MAX_EXECUTION_IDS = 4096  # ids remembered (about 0.4 MB once that many have run)
OUT_OF_PIDS = "the sandbox is out of processes (pids limit)"


if TYPE_CHECKING:
    from types import ModuleType
    from typing import BinaryIO, TypeVar

    from . import files
    from .commands import StdinQueue
    from .terminal import Terminal

    T = TypeVar("T")
    # A request read, the lock held while it is served, whether it made its stdin queue.
    _Turn = tuple[Frame, _thread.LockType, bool]


class AgentConfig:
    """What the agent needs to serve: its secret, the base environment and the workspace."""

    def __init__(self, token: str, env: dict[str, str], workspace: str) -> None:
        self.token = token
        self.env = env
        self.workspace = workspace


class RequestError(Exception):
    """A request the agent cannot serve; reported as an ``error`` frame (with ``code``, a
    service error code, when it is not the caller's `invalid_request`; with ``field``, the
    API's name of the request field at fault, when one is)."""

    def __init__(self, message: str, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field


def _number(request: Frame, key: str) -> float:
    value = request.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise RequestError(f"{key} must be a positive number")
    return float(value)


def _env(request: Frame) -> dict[str, str]:
    extra = request.get("env") or {}
    if not isinstance(extra, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in extra.items()
    ):
        raise RequestError("env must map strings to strings")
    for name, value in extra.items():
        if not name or "=" in name or "\0" in name:
            raise RequestError(f"env name {name!r} must be non-empty, without '=' or NUL")
        if "\0" in value:
            raise RequestError(f"env {name} must not contain NUL")
    return extra


def _text(request: Frame, key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str):
        raise RequestError(f"{key} must be a string")
    if "\0" in value:
        raise RequestError(f"{key} must not contain NUL")
    return value


def _directory(request: Frame, default: str) -> str:
    """The working directory of a command or a cell: it must exist (checked before the
    fork, or before the cell is queued)."""
    cwd = request.get("cwd") or default
    if not isinstance(cwd, str) or "\0" in cwd:
        raise RequestError("cwd must be a string without NUL")
    if not os.path.isdir(cwd):
        raise RequestError(
            f"workingDir {cwd} is not a directory in the sandbox", field="workingDir"
        )
    return cwd


class Connection:
    """One authenticated client connection."""

    def __init__(self, agent: Agent, sock: _socket.socket) -> None:
        self._agent = agent
        self._socket = sock
        self._sending = _thread.allocate_lock()
        self._open = True
        self._running: dict[object, Cancel] = {}
        self._serving: set[_thread.LockType] = set()  # one held per request being served
        self._inbound: dict[object, files.Inbound] = {}
        self._stdin: dict[object, StdinQueue] = {}
        self._terminals: dict[object, Terminal] = {}

    def send(self, frame: Frame, body: bytes = b"") -> None:
        data = encode(frame, body)
        with self._sending:
            if not self._open:
                return
            try:
                self._socket.sendall(data)
            except OSError:  # the client left: the reader ends the connection
                self._open = False

    def feed(self, frame: Frame, body: bytes) -> None:
        """A ``data`` frame for a running transfer (in order, so not a thread of its own)."""
        inbound = self._inbound.get(frame.get("target"))
        if inbound is not None:
            inbound.put((frame, body))

    def feed_stdin(self, frame: Frame) -> None:
        """A ``stdin`` frame for a running command (in order, so not a thread of its own);
        input for a request that has no stdin pipe, or has ended, is dropped."""
        inbound = self._stdin.get(frame.get("target"))
        data = frame.get("data", "")
        if inbound is not None and isinstance(data, str):
            inbound.put((data, frame.get("eof") is True))

    def read(self, stream: BinaryIO) -> None:
        """Take the reader's turn on this thread: read frames until one is a request, then
        serve it here while a new thread reads on; or, once the client has left, end the
        connection."""
        turn: _Turn | None = None
        try:
            turn = self._next_request(stream)
        finally:
            if turn is None:
                self._finish()
                stream.close()
                self._socket.close()
        if turn is not None:
            self._serve(*turn)

    def _next_request(self, stream: BinaryIO) -> _Turn | None:
        """Feed frames for running requests in order until a request comes whose next
        reader has started; None when the client left (or sent a frame too large)."""
        try:
            while True:
                try:
                    received = read_frame_sync(stream)
                except FrameTooLarge:
                    return None
                except ProtocolError as exc:
                    self.send({"id": None, "type": Reply.ERROR, "message": str(exc)})
                    continue
                if received is None:
                    return None
                request, body = received
                op = request.get("op")
                if op == Op.DATA:
                    self.feed(request, body)
                elif op == Op.STDIN:
                    self.feed_stdin(request)
                elif op == Op.RESIZE:
                    self.resize(request)
                elif (turn := self._hand_over(request, stream)) is not None:
                    return turn
        except (ProtocolError, OSError):
            return None

    def _hand_over(self, request: Frame, stream: BinaryIO) -> _Turn | None:
        """Start the next reader, with ``request`` counted as being served (and its stdin
        queue made first, so input sent right after it is kept); None, the request
        answered with an error, when the sandbox has no room for a thread even so."""
        request_id = request.get("id")
        op = request.get("op")
        wants_stdin = (op == Op.RUN_COMMAND and request.get("stdin") is True) or (
            op == Op.OPEN_TERMINAL
        )
        own_stdin = wants_stdin and request_id not in self._stdin
        if own_stdin:
            self._stdin[request_id] = SimpleQueue()
        served = _thread.allocate_lock()
        served.acquire()
        self._serving.add(served)
        try:
            self._agent.spawn(threads.start, self.read, stream)
        except RuntimeError:  # no room for a thread: this request fails, not the agent
            self._serving.discard(served)
            if own_stdin:
                self._stdin.pop(request_id, None)
            self.send({"id": request_id, "type": Reply.ERROR, "message": OUT_OF_PIDS})
            return None
        return request, served, own_stdin

    def _finish(self) -> None:
        """The client left: stop its executions and wait for them to end."""
        with self._sending:
            self._open = False
        for cancel in list(self._running.values()):
            cancel.set()
        for inbound in list(self._inbound.values()):
            inbound.put(({"abort": True}, b""))
        for served in list(self._serving):
            with served:
                pass

    def _serve(self, request: Frame, served: _thread.LockType, own_stdin: bool) -> None:
        try:
            self._handle(request)
        finally:
            if own_stdin:
                self._stdin.pop(request.get("id"), None)
            self._serving.discard(served)
            served.release()

    def _handle(self, request: Frame) -> None:
        request_id = request.get("id")
        handlers: dict[str, Callable[[Frame], None]] = {
            Op.PING: self._ping,
            Op.RUN_CODE: self._run_code,
            Op.RUN_COMMAND: self._run_command,
            Op.SET_ENV: self._set_env,
            Op.OPEN_TERMINAL: self._open_terminal,
            Op.CANCEL: self._cancel,
            Op.LIST_FILES: self._answer("list_files"),
            Op.DELETE_FILE: self._answer("delete"),
            Op.WRITE_FILE: self._transfer("write_file"),
            Op.READ_FILE: self._transfer("read_file"),
        }
        handler = handlers.get(str(request.get("op")))
        try:
            if not isinstance(request_id, int):
                raise RequestError("id must be an integer")
            if handler is None:
                raise RequestError(f"unknown op {request.get('op')!r}")
            handler(request)
        except FileError as exc:
            error = {"type": Reply.ERROR, "message": str(exc), "code": exc.code}
            self.send({"id": request_id, **error})
        except (RequestError, OSError, ProtocolError) as exc:
            # ProtocolError: an answer too large for a frame (e.g. a huge result repr).
            error = {"type": Reply.ERROR, "message": str(exc)}
            if isinstance(exc, RequestError) and exc.code is not None:
                error["code"] = exc.code
            if isinstance(exc, RequestError) and exc.field is not None:
                error["field"] = exc.field
            self.send({"id": request_id, **error})
        except Exception as exc:  # a bug must not end the connection: answer and go on
            print(f"agent: request_failed op={request.get('op')!r} {exc!r}", file=sys.stderr)
            error = {"type": Reply.ERROR, "message": "the agent failed", "code": "internal_error"}
            self.send({"id": request_id, **error})

    def _answer(self, name: str) -> Callable[[Frame], None]:
        """Serve a one-reply request with ``files.<name>``."""

        def serve(request: Frame) -> None:
            operation: Callable[[Frame], Frame] = getattr(_files(), name)
            self.send({**operation(request), "id": request["id"], "type": Reply.RESULT})

        return serve

    def _transfer(self, name: str) -> Callable[[Frame], None]:
        """Serve a transfer with ``files.<name>``, fed the request's ``data`` frames."""

        def serve(request: Frame) -> None:
            operation: Callable[[Frame, files.Send, files.Inbound], Frame]
            operation = getattr(_files(), name)
            request_id = request["id"]
            if request_id in self._inbound:
                raise RequestError(f"request {request_id} is already running")

            def send(frame: Frame, body: bytes) -> None:
                self.send({**frame, "id": request_id}, body)

            inbound: files.Inbound = SimpleQueue()
            self._inbound[request_id] = inbound
            try:
                result = operation(request, send, inbound)
            finally:
                del self._inbound[request_id]
            self.send({**result, "id": request_id, "type": Reply.RESULT})

        return serve

    def _ping(self, request: Frame) -> None:
        self.send({"id": request["id"], "type": Reply.PONG})

    def _cancel(self, request: Frame) -> None:
        cancel = self._running.get(request.get("target"))
        if cancel is None:
            raise RequestError(f"no running request {request.get('target')!r}")
        cancel.set()
        self.send({"id": request["id"], "type": Reply.ACK})

    def _execute(self, request: Frame, run: Callable[..., Outcome]) -> None:
        request_id = request["id"]
        if request_id in self._running:
            raise RequestError(f"request {request_id} is already running")

        def sink(stream: str, text: str) -> None:
            self.send({"id": request_id, "type": Reply.OUTPUT, "stream": stream, "data": text})

        time_limit = _number(request, "timeout")
        self._running[request_id] = cancel = Cancel()
        if not self._open:  # the client left before this started
            cancel.set()
        try:
            outcome = run(time_limit=time_limit, sink=sink, cancel=cancel)
        finally:
            del self._running[request_id]
            cancel.close()
        self.send(outcome.frame(request_id))

    def _run_code(self, request: Frame) -> None:
        self._agent.executions.claim(request.get("executionId"))
        code = _text(request, "code")
        env = _env(request)
        cwd = _directory(request, "") if request.get("cwd") else None  # else the last cell's
        interpreter = self._agent.interpreter
        request_id = request["id"]

        def display(bundle: Frame) -> None:
            self.send({"id": request_id, "type": Reply.DISPLAY, **bundle})

        self._execute(
            request, lambda **kw: interpreter.run(code, display=display, env=env, cwd=cwd, **kw)
        )

    def _run_command(self, request: Frame) -> None:
        from .commands import run_command

        self._agent.executions.claim(request.get("executionId"))
        command = _text(request, "command")
        extra = _env(request)
        cwd = _directory(request, self._agent.config.workspace)
        env = {**self._agent.config.env, **extra}
        stdin = self._stdin.get(request["id"])
        spawn = self._agent.spawn
        self._execute(
            request,
            lambda **kw: run_command(command, env=env, cwd=cwd, stdin=stdin, spawn=spawn, **kw),
        )

    def resize(self, frame: Frame) -> None:
        """A ``resize`` frame for a running terminal (in order, like ``stdin``); a bad
        size is answered with an ``error`` frame and changes nothing."""
        terminal = self._terminals.get(frame.get("target"))
        if terminal is None:
            return
        from .terminal import TerminalError  # loaded: a terminal is running

        try:
            terminal.resize(frame.get("cols"), frame.get("rows"))
        except (TerminalError, OSError) as exc:
            self.send({"id": frame.get("id"), "type": Reply.ERROR, "message": str(exc)})

    def _open_terminal(self, request: Frame) -> None:
        from .terminal import Terminal, TerminalError

        request_id = request["id"]
        try:
            terminal = Terminal(request.get("cols", 80), request.get("rows", 24))
        except TerminalError as exc:
            raise RequestError(str(exc)) from exc
        env = dict(self._agent.config.env)
        stdin = self._stdin[request_id]
        self._terminals[request_id] = terminal
        try:
            self._execute(
                request,
                lambda **kw: terminal.run(
                    env=env, cwd=self._agent.config.workspace, stdin=stdin, **kw
                ),
            )
        finally:
            del self._terminals[request_id]

    def _set_env(self, request: Frame) -> None:
        extra = _env(request)
        self._agent.config.env.update(extra)
        self._agent.interpreter.set_env(extra)
        self.send({"id": request["id"], "type": Reply.RESULT})


def _files() -> ModuleType:
    from . import files

    return files


class ExecutionIds:
    """The execution ids the sandbox has run (the last MAX_EXECUTION_IDS): a client picks
    its ids for streamed executions, and one used again would share its first's output
    stream, so it is refused before anything runs."""

    def __init__(self) -> None:
        self._ids: dict[str, None] = {}  # in the order they came
        self._lock = _thread.allocate_lock()

    def claim(self, execution_id: object) -> None:
        """Note ``execution_id`` (None: a request that names none); refused if known."""
        if execution_id is None:
            return
        if not isinstance(execution_id, str):
            raise RequestError("executionId must be a string")
        with self._lock:
            if execution_id in self._ids:
                message = f"executionId {execution_id} was already used in this sandbox"
                raise RequestError(message, "conflict")
            self._ids[execution_id] = None
            if len(self._ids) > MAX_EXECUTION_IDS:
                del self._ids[next(iter(self._ids))]


class Agent:
    """Serves the protocol on a Unix socket (or TCP, in a Pod) until killed."""

    def __init__(self, config: AgentConfig, interpreter: Interpreter) -> None:
        self.config = config
        self.interpreter = interpreter
        self.executions = ExecutionIds()

    def spawn(self, start: Callable[..., T], *args: object) -> T:
        """``start(*args)``: a thread or a process, making room when the sandbox's pids limit
        refuses it. A code cell's children are the interpreter's and outlive the cell (as
        in a Jupyter kernel, docs/security.md), so a fork bomb a cell left can hold every
        pid: then the interpreter is restarted, its process group killed (as an OOM ends
        it), and ``start`` tried again while those are reaped. Raises what ``start`` raised
        when there is still no room (e.g. processes a command moved out with ``setsid``)."""
        try:
            return start(*args)
        except (BlockingIOError, RuntimeError):  # fork's EAGAIN; "can't start new thread"
            print("agent: out_of_pids reclaiming=interpreter", file=sys.stderr, flush=True)
            self.interpreter.reclaim()
        deadline = time.monotonic() + PIDS_WAIT
        while True:
            try:
                return start(*args)
            except (BlockingIOError, RuntimeError):
                if time.monotonic() >= deadline:
                    raise
                time.sleep(ACCEPT_RETRY)

    def serve(self, socket_path: str) -> None:
        """Listen on ``socket_path`` (replacing a stale socket) forever."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(socket_path)
        server = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            server.bind(socket_path)
            server.listen(LISTEN_BACKLOG)
            try:
                os.chmod(socket_path, 0o600)
            except PermissionError:
                # A socket gVisor made on the host (runsc --host-uds) refuses chmod; a
                # parent dir only its owner may enter keeps it just as private.
                if os.stat(os.path.dirname(socket_path) or ".").st_mode & 0o077:
                    raise
            self._serve(server)
        finally:
            server.close()

    def serve_tcp(self, host: str, port: int) -> None:
        """Listen on ``host:port`` forever (in a Pod; the token is the only gate)."""
        family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
        server = _socket.socket(family, _socket.SOCK_STREAM)
        try:
            server.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            server.bind((host, port))
            server.listen(LISTEN_BACKLOG)
            self._serve(server)
        finally:
            server.close()

    def _serve(self, server: _socket.socket) -> None:
        try:
            while True:
                try:  # _accept: socket.accept's core, an fd (typeshed omits it)
                    client = _socket.socket(fileno=server._accept()[0])  # type: ignore[attr-defined]
                except OSError as exc:  # out of fds, an aborted connect: keep serving
                    print(f"agent: accept_failed {exc!r}", file=sys.stderr, flush=True)
                    time.sleep(ACCEPT_RETRY)
                    continue
                if client.family != _socket.AF_UNIX:
                    client.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                try:
                    self.spawn(threads.start, self._handle, client)
                except RuntimeError:  # no room for a thread: this connection waits
                    client.close()
        finally:
            self.interpreter.close()

    def _authenticate(self, stream: BinaryIO) -> bool:
        received = read_frame_sync(stream)
        if received is None:
            return False
        hello = received[0]
        token = hello.get("token")
        return (
            hello.get("op") == Op.HELLO
            and isinstance(token, str)
            and compare_digest(token.encode(), self.config.token.encode())
        )

    def _handle(self, client: _socket.socket) -> None:
        """A new connection's first thread: authenticate, then read (see ``Connection``)."""
        connection = Connection(self, client)
        stream = open(client.fileno(), "rb", closefd=False)  # noqa: SIM115 - closed by read
        try:
            authenticated = self._authenticate(stream)
        except (ProtocolError, OSError):
            authenticated = False
        if authenticated:
            connection.send({"ok": True})
            with contextlib.suppress(RuntimeError):  # none now: the first request starts one
                threads.reserve()
            connection.read(stream)
        else:
            stream.close()
            client.close()
