"""The persistent interpreter: runs cells sent over a control pipe in one namespace.

The worker is forked from the agent (it shares the agent's memory copy-on-write and starts
in a few milliseconds): ``run_forked`` turns the child into what a fresh interpreter would
be, then serves. fd 1 and 2 are the output pipes the agent streams.
"""

from __future__ import annotations

import _ast  # the node types alone: the ast module costs every start ~2 ms
import builtins
import contextlib
import importlib
import io
import linecache
import os
import resource
import sys
from collections.abc import Callable
from itertools import count
from types import ModuleType

from . import figures, secret
from .display import Bundle, Display
from .protocol import TYPE_CHECKING, Frame, encode, read_frame_sync
from .userpath import add_user_path

if TYPE_CHECKING:
    import signal
    from types import CodeType, TracebackType
    from typing import Any, BinaryIO, NoReturn, TextIO
else:  # the C module: ``signal`` converts every call's result to enums, and each cell
    import _signal as signal  # makes several (touching pages shared with the agent)


WARM_UP = "<warm-up>"
TOP_LEVEL_AWAIT = _ast.PyCF_ALLOW_TOP_LEVEL_AWAIT  # `await` in a cell, as in IPython
CO_COROUTINE = 0x80  # inspect.CO_COROUTINE: the compiled cell awaits, so running it is a coroutine


def _compile(source: str, filename: str) -> tuple[CodeType, CodeType | None]:
    """Compile a cell; a trailing expression is compiled separately so its value is kept."""
    flags = _ast.PyCF_ONLY_AST | TOP_LEVEL_AWAIT
    tree = compile(source, filename, "exec", flags, dont_inherit=True)
    assert isinstance(tree, _ast.Module)  # what "exec" parses to; narrows the type
    last: CodeType | None = None
    if tree.body and isinstance(tree.body[-1], _ast.Expr):
        expr = _ast.Expression(tree.body[-1].value)
        del tree.body[-1]
        last = compile(expr, filename, "eval", TOP_LEVEL_AWAIT, dont_inherit=True)
    # dont_inherit: our own ``from __future__ import annotations`` is not the user's
    return compile(tree, filename, "exec", TOP_LEVEL_AWAIT, dont_inherit=True), last


def _cells() -> ModuleType:
    """What few cells ask for (their own env or directory, top-level await), on first use:
    an idle worker stays small."""
    from . import cells

    return cells


def _error(exc: BaseException, tb: TracebackType | None) -> dict[str, str]:
    import traceback  # on the first error: idle workers stay small

    lines = traceback.format_exception(type(exc), exc, tb)
    return {"name": type(exc).__name__, "value": str(exc), "traceback": "".join(lines)}


def _cpu_ms() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return seconds * 1000.0


def _run(
    source: str,
    filename: str,
    namespace: dict[str, Any],
    display: Display,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> Frame:
    """Run a cell (with ``env`` added to the environment and in ``cwd``, for this cell
    only); its trailing expression's value (unless ``None`` or the cell ends in ``;``, as
    in IPython) is displayed as the main result, then the figures left open."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        body, last = _compile(source, filename)
    except SyntaxError as exc:
        return {"ok": False, "error": _error(exc, None)}
    try:
        with _cells().within(env, cwd) if env or cwd else contextlib.nullcontext():
            if (body.co_flags | (last.co_flags if last else 0)) & CO_COROUTINE:
                value = _cells().run_awaiting(body, last, namespace)
            else:
                exec(body, namespace)
                value = eval(last, namespace) if last is not None else None
    except BaseException as exc:  # user code may raise anything, SystemExit included
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != filename:
            tb = tb.tb_next  # ours (and the event loop's): the user's start at the cell
        return {"ok": False, "error": _error(exc, tb)}
    if value is None or source.rstrip().endswith(";"):
        return {"ok": True, "result": None}
    bundle = display.show(value, main=True)
    return {"ok": True, "result": bundle["data"]["text/plain"]}


def _show_figures() -> None:
    try:
        figures.flush()
    except Exception:  # a figure that cannot be drawn does not fail the cell
        import traceback

        traceback.print_exc()


def _publisher(requests: BinaryIO, reply_fd: int) -> Callable[[Bundle], None]:
    """Send a result to the agent and wait until it has passed it on (after the output
    written before it, which it drains first): output written after comes after it."""

    def publish(bundle: Bundle) -> None:
        _flush()
        data = encode({"display": bundle})
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:  # whole, even if interrupted: a partial frame would desynchronize the pipe
            while data:
                data = data[os.write(reply_fd, data) :]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        read_frame_sync(requests)  # the agent's {"shown": true}

    return publish


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def serve(request_fd: int, reply_fd: int) -> None:
    """Answer cell requests until the request pipe closes."""
    main = ModuleType("__main__")  # a real module: pickle finds classes defined in cells
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    namespace = main.__dict__
    requests = os.fdopen(request_fd, "rb", buffering=0)
    display = Display(_publisher(requests, reply_fd))
    display.install()
    figures.watch()
    _warm_up(display)
    for number in count(1):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        received = read_frame_sync(requests)
        if received is None:
            return
        request = received[0]
        if "shown" in request:  # an interrupt came before this was read: already passed
            continue
        if "env" in request:  # the agent's environment grew (a warm sandbox was claimed)
            os.environ.update(request["env"])
            os.write(reply_fd, encode({"ok": True}))
            continue
        importlib.invalidate_caches()  # packages installed since the last cell
        cpu_before = _cpu_ms()
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            source, filename = str(request.get("code", "")), f"<cell-{number}>"
            cell_env, cwd = request.get("cellEnv"), request.get("cwd")
            reply = _run(source, filename, namespace, display, cell_env, cwd)
            _show_figures()
        except KeyboardInterrupt:  # arrived outside the user's code
            reply = {
                "ok": False,
                "error": {
                    "name": "KeyboardInterrupt",
                    "value": "",
                    "traceback": "KeyboardInterrupt\n",
                },
            }
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _flush()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        reply.update(cpuMs=_cpu_ms() - cpu_before, peakMemoryBytes=peak)
        os.write(reply_fd, encode(reply))


def _warm_up(display: Display) -> None:
    """Walk a cell's path once, unseen (its request decoded from memory, a scratch
    namespace, no output, no reply, not counted), while the worker waits for its first
    request: the pages that path writes, shared with the agent since the fork, are copied
    now rather than during the user's first cell (~160 page faults, about half a
    millisecond of it; the request's decoding and the import caches' invalidation are 80
    of them). A warm pool's sandboxes start their first call with this done."""
    request, _ = read_frame_sync(io.BytesIO(encode({"code": "None"}))) or ({}, b"")
    importlib.invalidate_caches()
    reply = _run(str(request.get("code")), WARM_UP, {"__builtins__": builtins}, display)
    del linecache.cache[WARM_UP]
    _show_figures()
    _flush()
    reply.update(
        cpuMs=_cpu_ms(), peakMemoryBytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    )
    encode(reply)


def _reset_signals() -> None:
    """Dispositions as after exec: handlers go back to the default, ignored stays ignored."""
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    for signum in signal.valid_signals():
        if callable(signal.getsignal(signum)):
            with contextlib.suppress(OSError, ValueError):
                signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _keep_only(fds: set[int]) -> None:
    """Close every fd above 2 but ``fds`` (the agent's sockets, pipes and pidfds)."""
    bounds = sorted(fds)
    for low, high in zip(bounds, [*bounds[1:], os.sysconf("SC_OPEN_MAX")], strict=True):
        os.closerange(low + 1, high)


def _stream(fd: int, mode: str, like: TextIO | None) -> io.TextIOWrapper:
    """A standard stream on ``fd``, as the interpreter makes them (stdout line-buffered)."""
    encoding = like.encoding if like is not None else "utf-8"
    errors = like.errors if like is not None else "strict"
    buffer = open(fd, mode + "b", closefd=False)  # noqa: SIM115 - lives as sys.std*
    return io.TextIOWrapper(buffer, encoding, errors, line_buffering=mode == "w")


def _stdio(out_fd: int, err_fd: int) -> None:
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((null, 0), (out_fd, 1), (err_fd, 2)):
        os.dup2(fd, target)
    os.close(null)
    # The agent's stream objects may hold its log's state; fresh ones, as after exec.
    sys.stdin = sys.__stdin__ = _stream(0, "r", sys.__stdin__)  # type: ignore[misc]
    sys.stdout = sys.__stdout__ = _stream(1, "w", sys.__stdout__)  # type: ignore[misc]
    sys.stderr = sys.__stderr__ = _stream(2, "w", sys.__stderr__)  # type: ignore[misc]


def _fresh_modules() -> None:
    """Undo what only the agent wanted: the site dirs it skipped (``python -S``), the
    working dir it kept off its path (``python -P``: user code imports its own modules
    from the workspace, as ``python -m`` there would)."""
    if sys.flags.no_site:
        import site

        site.main()
    if sys.flags.safe_path:
        sys.path.insert(0, os.getcwd())
    add_user_path()  # package installs (importable without a restart), runtime packages
    sys.argv = [""]


def set_environ(env: dict[str, str]) -> None:
    """Make ``os.environ`` (and the process's environment) ``env``, changing only what
    differs: it is mostly the agent's already, and ``clear`` then ``update`` runs the
    generic mapping code over every variable twice, ~0.1 MB of pages it shares with the
    agent that the worker copies."""
    for name in [name for name in os.environ if name not in env]:
        del os.environ[name]
    for name, value in env.items():
        if os.environ.get(name) != value:
            os.environ[name] = value


def run_forked(
    pipes: tuple[int, int, int, int], cwd: str, env: dict[str, str], token: str | None
) -> NoReturn:
    """In the child just forked from the agent: become the worker and serve; never returns.

    ``pipes`` are the request, reply, stdout and stderr ends; ``token`` is wiped from memory
    before user code can run.
    """
    request_fd, reply_fd, out_fd, err_fd = pipes
    status = 1
    try:
        _reset_signals()
        os.setsid()
        _stdio(out_fd, err_fd)
        _keep_only({2, request_fd, reply_fd})
        os.chdir(cwd)
        set_environ(env)
        _fresh_modules()
        if token is not None:
            secret.wipe(token)
        secret.set_dumpable(True)  # the agent is not (see ``secret``); user code is as usual
        serve(request_fd, reply_fd)
        status = 0
    except BaseException:
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
    finally:
        _flush()
        os._exit(status)
