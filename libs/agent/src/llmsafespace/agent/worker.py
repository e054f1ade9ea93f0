"""The persistent interpreter: runs cells sent over a control pipe in one namespace.

Run as ``python -m llmsafespace.agent.worker REQUEST_FD REPLY_FD``; fd 1 and 2 are the
output pipes the agent streams.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import io
import linecache
import os
import resource
import signal
import sys
import traceback
from itertools import count
from types import CodeType, TracebackType
from typing import Any

from .protocol import Frame, encode, read_frame_sync

PACKAGES = "/workspace/.packages"  # pip --target for POST /sandboxes/{id}/packages


def _compile(source: str, filename: str) -> tuple[CodeType, CodeType | None]:
    """Compile a cell; a trailing expression is compiled separately so its value is kept."""
    tree = ast.parse(source, filename)
    last: CodeType | None = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        expr = ast.Expression(tree.body[-1].value)
        del tree.body[-1]
        last = compile(expr, filename, "eval")
    return compile(tree, filename, "exec"), last


def _error(exc: BaseException, tb: TracebackType | None) -> dict[str, str]:
    lines = traceback.format_exception(type(exc), exc, tb)
    return {"name": type(exc).__name__, "value": str(exc), "traceback": "".join(lines)}


def _cpu_ms() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    return seconds * 1000.0


def _run(source: str, filename: str, namespace: dict[str, Any]) -> Frame:
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        body, last = _compile(source, filename)
    except SyntaxError as exc:
        return {"ok": False, "error": _error(exc, None)}
    try:
        exec(body, namespace)
        value = eval(last, namespace) if last is not None else None
    except BaseException as exc:  # user code may raise anything, SystemExit included
        tb = exc.__traceback__.tb_next if exc.__traceback__ else None
        return {"ok": False, "error": _error(exc, tb)}
    return {"ok": True, "result": None if value is None else repr(value)}


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def serve(request_fd: int, reply_fd: int) -> None:
    """Answer cell requests until the request pipe closes."""
    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    requests = os.fdopen(request_fd, "rb", buffering=0)
    for number in count(1):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        request = read_frame_sync(requests)
        if request is None:
            return
        importlib.invalidate_caches()  # packages installed since the last cell
        cpu_before = _cpu_ms()
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            reply = _run(str(request.get("code", "")), f"<cell-{number}>", namespace)
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


def main() -> None:
    """Entry point: hide the agent's import path from user code, then serve."""
    os.environ.pop("PYTHONPATH", None)
    sys.path.insert(1, PACKAGES)  # where package installs go; importable without a restart
    request_fd, reply_fd = (int(arg) for arg in sys.argv[1:3])
    sys.argv = [""]
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    serve(request_fd, reply_fd)


if __name__ == "__main__":
    main()
