"""``run_code``: one persistent worker interpreter; calls are serialized and stopped on time.

The worker is forked from the agent, not exec'd: it shares the agent's pages copy-on-write
(an idle worker costs only what it has written to) and a fresh one is ready in
milliseconds. The agent imports the worker's modules before its first fork: imported in
the child instead, each new object lands in a pool on a page shared with the agent and
copies it (~1 MB more per sandbox than the modules themselves). Calls run on the
requesting thread; one selector waits on the worker's pipes, its exit and the call's
cancel: an epoll object itself (the ``selectors`` module and its key tuples are ~0.1 MB of
every sandbox's memory).
"""

from __future__ import annotations

import _thread
import contextlib
import gc
import os
import select
import sys
import time

from . import jsworker
from .cancel import Cancel
from .frames import Outcome, Usage
from .outcome import DisplaySink, Sink, discard_display, stopped
from .pipes import CHUNK, PipeReader, discard
from .processes import ended_by_signal, exit_fd, oom_kills
from .protocol import TYPE_CHECKING, Frame, FrameBuffer, ProtocolError, encode

if TYPE_CHECKING:
    import signal
    from types import ModuleType
    from typing import NoReturn
else:  # its C module, as the worker (``signal`` loads its enums into every sandbox)
    import _signal as signal

INTERRUPT_GRACE = 2.0
RESTART_NOTICE = "\n[agent] the interpreter did not stop and was restarted; its state is lost\n"
DIED_NOTICE = "\n[agent] the interpreter {how}; its state is lost\n"
RECLAIM_NOTICE = (
    "\n[agent] the sandbox ran out of processes (pids limit); the interpreter and what its"
    " cells started were killed; its state is lost\n"
)
_REPLY, _EXIT, _CANCEL = "reply", "exit", "cancel"


class _Worker:
    """One live interpreter process, its pipes and the epoll object that watches them."""

    def __init__(self, pid: int, requests: int, replies: int, out: int, err: int) -> None:
        self.pid = pid
        self.requests = requests
        self.replies = replies
        self.frames = FrameBuffer()
        self.stdout = PipeReader(out, "stdout")
        self.stderr = PipeReader(err, "stderr")
        self.exited = exit_fd(pid)
        self.returncode: int | None = None
        os.set_blocking(replies, False)
        self._poll = select.epoll()
        self._watched: dict[int, PipeReader | str] = {}
        for fd, what in ((out, self.stdout), (err, self.stderr), (replies, _REPLY)):
            self._watch(fd, what)
        self._watch(self.exited, _EXIT)

    def _watch(self, fd: int, what: PipeReader | str) -> None:
        self._poll.register(fd, select.EPOLLIN)
        self._watched[fd] = what

    def _unwatch(self, fd: int) -> None:
        self._poll.unregister(fd)
        del self._watched[fd]

    @classmethod
    def start(
        cls, cwd: str, env: dict[str, str], token: str | None, command: list[str] | None = None
    ) -> _Worker:
        """Fork a Python worker, or exec ``command`` (another language's worker)."""
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        child_ends = (request_r, reply_w, out_w, err_w)
        try:
            if command is not None:
                pid = jsworker.spawn(command, child_ends, cwd, env)
            else:
                from . import worker  # before the fork: see the module's docstring

                pid = _fork()
                if pid == 0:
                    _become_worker(worker, child_ends, cwd, env, token)
        finally:
            for fd in child_ends:
                os.close(fd)
        return cls(pid, request_w, reply_r, out_r, err_r)

    def listen(self, sink: Sink) -> None:
        self.stdout.sink = self.stderr.sink = sink

    def drain(self) -> None:
        self.stdout.drain()
        self.stderr.drain()

    def reply(
        self, deadline: float, cancel: Cancel | None = None, display: DisplaySink = discard_display
    ) -> tuple[Frame | None, str]:
        """Stream output until the reply: (reply, "reply"), else (None, why it ended:
        "exit", "cancel" or "deadline"). Results sent before the reply go to ``display``,
        each after the output the worker wrote before it (already in the pipes: drained
        first); the worker waits for ``shown`` before it goes on, so what it writes next
        comes after."""
        if cancel is not None:
            self._watch(cancel.fileno(), _CANCEL)
        ended: set[str] = set()
        try:
            while True:
                while (header := self.frames.pop()) is not None:
                    if "display" not in header:
                        return header, _REPLY
                    self.drain()
                    display(header["display"])
                    os.write(self.requests, encode({"shown": True}))
                for reason in (_EXIT, _CANCEL):  # a reply already read wins over both
                    if reason in ended:
                        return None, reason
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return None, "deadline"
                for fd, _ in self._poll.poll(timeout):
                    what = self._watched[fd]
                    if isinstance(what, PipeReader):
                        if not what.read_once() and what.eof:
                            self._unwatch(fd)  # closed: else always ready
                    elif what == _REPLY:
                        self._read_replies(ended)
                    else:
                        ended.add(what)
                if _EXIT in ended:
                    self._read_replies(ended)  # what it wrote before it went
        finally:
            if cancel is not None:
                self._unwatch(cancel.fileno())

    def _read_replies(self, ended: set[str]) -> None:
        """Buffer what the reply pipe holds; its end counts as the worker's exit."""
        while True:
            try:
                data = os.read(self.replies, CHUNK)
            except BlockingIOError:
                return
            if not data:
                ended.add(_EXIT)
                return
            self.frames.feed(data)

    def kill(self) -> None:
        """Kill the worker and everything it started, reap it and release its pipes."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.close()

    def close(self) -> None:
        """Reap the worker (it has exited, or is killed) and release its pipes."""
        if self.returncode is None:
            self.returncode = _reap(self.pid)
        self._poll.close()
        for pipe in (self.stdout, self.stderr):
            pipe.stop()
            os.close(pipe.fd)
        for fd in (self.requests, self.replies, self.exited):
            os.close(fd)


def _become_worker(
    worker: ModuleType,
    pipes: tuple[int, int, int, int],
    cwd: str,
    env: dict[str, str],
    token: str | None,
) -> NoReturn:
    """In the forked child: serve as the worker; never returns to the agent's code."""
    try:
        worker.run_forked(pipes, cwd, env, token)
    finally:
        os._exit(1)


class Interpreter:
    """A notebook-like Python kernel: variables survive between calls; calls run one at a time."""

    def __init__(
        self,
        cwd: str,
        env: dict[str, str],
        token: str | None = None,
        command: list[str] | None = None,
    ) -> None:
        """Workers run in ``cwd`` with ``env``; ``token`` (the agent's secret) is wiped
        from each worker's copy of the agent's memory before it runs user code. With
        ``command`` (``jsworker.command()``), workers are that program instead."""
        self._command = command
        self._cwd = cwd
        self._env = env
        self._token = token
        self._lock = _thread.allocate_lock()
        self._worker: _Worker | None = None
        self._notice = ""  # told on the next cell's stderr (why its state is gone)

    def guard(self, token: str) -> None:
        """Workers started from now on wipe ``token`` (read after the first was forked)."""
        with self._lock:
            self._token = token

    def warm(self) -> None:
        """Start the worker ahead of the first call (that call then only runs code)."""
        with self._lock:
            if self._worker is None:
                self._fresh()

    def _fresh(self) -> _Worker:
        self._worker = _Worker.start(self._cwd, self._env, self._token, self._command)
        return self._worker

    def set_env(self, extra: dict[str, str]) -> None:
        """Add to the environment: of later workers, and of the live one (its state kept)."""
        with self._lock:
            self._env.update(extra)
            worker = self._worker
            if worker is None:
                return
            try:
                os.write(worker.requests, encode({"env": extra}))
                reply, _ = worker.reply(time.monotonic() + INTERRUPT_GRACE)
            except (OSError, ProtocolError):
                reply = None
            if reply is None:  # it died (or hangs): the next is fresh
                worker.kill()
                self._worker = None

    def run(
        self,
        code: str,
        *,
        time_limit: float,
        sink: Sink,
        cancel: Cancel,
        display: DisplaySink = discard_display,
        env: dict[str, str] | None = None,
        cwd: str | None = None,
    ) -> Outcome:
        """Run one cell (with ``env`` added and in ``cwd``, for this cell only); stop it
        after ``time_limit`` seconds or when ``cancel`` is set. Its rich results go to
        ``display``, each after the output written before it."""
        with self._lock:
            if self._notice:
                sink("stderr", self._notice)
                self._notice = ""
            worker = self._worker or self._fresh()
            worker.listen(sink)
            worker.drain()  # what its threads wrote since the last cell: this cell's output
            try:
                cell: Frame = {"code": code}
                if env:
                    cell["cellEnv"] = env
                if cwd:
                    cell["cwd"] = cwd
                return self._run(worker, cell, time_limit, sink, cancel, display)
            finally:
                worker.listen(discard)

    def _run(
        self,
        worker: _Worker,
        cell: Frame,
        time_limit: float,
        sink: Sink,
        cancel: Cancel,
        display: DisplaySink,
    ) -> Outcome:
        started = time.monotonic()
        oom_before = oom_kills()
        with contextlib.suppress(BrokenPipeError):
            os.write(worker.requests, encode(cell))
        reason = None
        try:
            header, ended = worker.reply(started + time_limit, cancel, display)
            if ended in ("deadline", _CANCEL):
                reason = "cancelled" if cancel.is_set() else "timeout"
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGINT)
                header, _ = worker.reply(time.monotonic() + INTERRUPT_GRACE, None, display)
        except (OSError, ProtocolError):  # a broken pipe or a garbled reply: a new worker
            header = None
        wall_ms = (time.monotonic() - started) * 1000.0
        if header is not None:
            worker.drain()
            if reason is not None:
                return stopped(reason, _usage(header, wall_ms))
            return _outcome(header, wall_ms)
        worker.kill()
        self._fresh()
        if reason is not None:
            sink("stderr", RESTART_NOTICE)
            return stopped(reason, Usage(wall_ms, 0.0, 0))
        return _died(worker.returncode or 0, wall_ms, oom_before, sink)

    def reclaim(self) -> None:
        """Kill the worker's process group, and with it what its cells started (a fork bomb
        holding the sandbox's pids); the next cell runs in a fresh worker. A cell running
        now is not waited for: it ends as its worker's death."""
        if not self._lock.acquire(blocking=False):
            worker = self._worker
            if worker is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGKILL)
            return
        try:
            if self._worker is not None:
                self._worker.kill()
                self._worker = None
                self._notice = RECLAIM_NOTICE
        finally:
            self._lock.release()

    def close(self) -> None:
        """Stop the worker."""
        with self._lock:
            if self._worker is not None:
                self._worker.kill()
                self._worker = None


def _fork() -> int:
    """``os.fork`` with nothing buffered in our streams, and our objects frozen out of the
    garbage collector (whose bookkeeping writes would unshare every page holding one)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    gc.freeze()
    return os.fork()


def _reap(pid: int) -> int:
    """Reap an exited child; its exit code (negative: the signal that ended it)."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _usage(header: Frame, wall_ms: float) -> Usage:
    return Usage(wall_ms, float(header.get("cpuMs", 0.0)), int(header.get("peakMemoryBytes", 0)))


def _outcome(header: Frame, wall_ms: float) -> Outcome:
    usage = _usage(header, wall_ms)
    if header.get("ok"):
        return Outcome("completed", 0, "exit", usage, result=header.get("result"))
    return Outcome("failed", 1, "exit", usage, error=header.get("error"))


def _died(returncode: int, wall_ms: float, oom_before: int, sink: Sink) -> Outcome:
    """The outcome of a cell whose interpreter ended under it; its stderr says so, since
    the next cell runs in a fresh one. An exit with code 0 (``os._exit(0)``) completed."""
    usage = Usage(wall_ms, 0.0, 0)
    if returncode < 0:
        ended_by = ended_by_signal(-returncode, oom_before)
        how = (
            "ran out of memory and was killed"
            if ended_by == "oom"
            else f"was killed by signal {-returncode} ({signal.strsignal(-returncode)})"
        )
        sink("stderr", DIED_NOTICE.format(how=how))
        return Outcome("failed", 128 - returncode, ended_by, usage)
    sink("stderr", DIED_NOTICE.format(how=f"exited with code {returncode}"))
    status = "failed" if returncode else "completed"
    return Outcome(status, returncode, "exit", usage)
