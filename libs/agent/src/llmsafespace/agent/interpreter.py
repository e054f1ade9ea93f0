"""``run_code``: one persistent worker interpreter; calls are serialized and stopped on time.

The worker is forked from the agent, not exec'd: it shares the agent's pages copy-on-write
(an idle worker costs only what it has written to) and a fresh one is ready in
milliseconds. Forking happens on the event loop's thread only; the child never returns to
the loop (see ``worker.run_forked``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from . import jsworker
from .outcome import DisplaySink, Outcome, Sink, Usage, discard_display, stopped
from .pipes import PipeReader, discard
from .processes import ended_by_signal, exit_watch, oom_kills
from .protocol import Frame, encode, read_frame
from .worker import run_forked

INTERRUPT_GRACE = 2.0
RESTART_NOTICE = "\n[agent] the interpreter did not stop and was restarted; its state is lost\n"


@dataclass
class _Worker:
    """One live interpreter process and its pipes."""

    pid: int
    requests: int
    replies: asyncio.StreamReader
    reply_transport: asyncio.ReadTransport
    stdout: PipeReader
    stderr: PipeReader
    exited: asyncio.Future[None]
    returncode: int | None = None

    @classmethod
    async def start(
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
                pid = _fork()
                if pid == 0:
                    run_forked(child_ends, cwd, env, token)
        finally:
            for fd in child_ends:
                os.close(fd)
        loop = asyncio.get_running_loop()
        replies = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(replies), os.fdopen(reply_r, "rb", buffering=0)
        )
        return cls(
            pid=pid,
            requests=request_w,
            replies=replies,
            reply_transport=transport,
            stdout=PipeReader(out_r, "stdout"),
            stderr=PipeReader(err_r, "stderr"),
            exited=exit_watch(pid),
        )

    def listen(self, sink: Sink) -> None:
        self.stdout.sink = self.stderr.sink = sink

    def drain(self) -> None:
        self.stdout.drain()
        self.stderr.drain()

    async def kill(self) -> None:
        """Kill the worker and everything it started, reap it and release its pipes."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        await asyncio.shield(self.exited)
        await self.close()

    async def close(self) -> None:
        """Release the pipes of an exited worker and reap it."""
        await asyncio.shield(self.exited)
        if self.returncode is None:
            self.returncode = _reap(self.pid)
        for pipe in (self.stdout, self.stderr):
            pipe.stop()
            os.close(pipe.fd)
        os.close(self.requests)
        self.reply_transport.close()


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
        self._lock = asyncio.Lock()
        self._worker: _Worker | None = None

    async def warm(self) -> None:
        """Start the worker ahead of the first call (that call then only runs code)."""
        async with self._lock:
            if self._worker is None:
                await self._fresh()

    async def _fresh(self) -> _Worker:
        self._worker = await _Worker.start(self._cwd, self._env, self._token, self._command)
        return self._worker

    async def set_env(self, extra: dict[str, str]) -> None:
        """Add to the environment: of later workers, and of the live one (its state kept)."""
        async with self._lock:
            self._env.update(extra)
            worker = self._worker
            if worker is None:
                return
            try:
                os.write(worker.requests, encode({"env": extra}))
                await read_frame(worker.replies)
            except (OSError, asyncio.IncompleteReadError):  # it died: the next is fresh
                await worker.kill()
                self._worker = None

    async def run(
        self,
        code: str,
        *,
        time_limit: float,
        sink: Sink,
        cancel: asyncio.Event,
        display: DisplaySink = discard_display,
    ) -> Outcome:
        """Run one cell; stop it after ``time_limit`` seconds or when ``cancel`` is set.
        Its rich results go to ``display``, each after the output written before it."""
        async with self._lock:
            worker = self._worker or await self._fresh()
            worker.listen(sink)
            try:
                return await self._run(worker, code, time_limit, sink, cancel, display)
            finally:
                worker.listen(discard)

    async def _run(
        self,
        worker: _Worker,
        code: str,
        time_limit: float,
        sink: Sink,
        cancel: asyncio.Event,
        display: DisplaySink,
    ) -> Outcome:
        loop = asyncio.get_running_loop()
        started = loop.time()
        oom_before = oom_kills()
        reply = asyncio.ensure_future(_reply(worker, display))
        stop = asyncio.ensure_future(cancel.wait())
        try:
            with contextlib.suppress(BrokenPipeError):
                os.write(worker.requests, encode({"code": code}))
            waiting: set[asyncio.Future[Any]] = {reply, worker.exited, stop}
            done, _ = await asyncio.wait(waiting, timeout=time_limit, return_when="FIRST_COMPLETED")
            reason = None
            if not done or done == {stop}:
                reason = "cancelled" if cancel.is_set() else "timeout"
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGINT)
                waiting = {reply, worker.exited}
                await asyncio.wait(waiting, timeout=INTERRUPT_GRACE, return_when="FIRST_COMPLETED")
        finally:
            stop.cancel()
        wall_ms = (loop.time() - started) * 1000.0
        if reply.done() and reply.exception() is None:
            worker.drain()
            header = reply.result()
            if reason is not None:
                return stopped(reason, _usage(header, wall_ms))
            return _outcome(header, wall_ms)
        reply.cancel()
        if reason is not None:
            await worker.kill()
        else:
            await worker.close()
        await self._fresh()
        if reason is not None:
            sink("stderr", RESTART_NOTICE)
            return stopped(reason, Usage(wall_ms, 0.0, 0))
        return _died(worker.returncode or 0, wall_ms, oom_before)

    async def close(self) -> None:
        """Stop the worker."""
        if self._worker is not None:
            await self._worker.kill()
            self._worker = None


async def _reply(worker: _Worker, display: DisplaySink) -> Frame:
    """The cell's reply; the results sent before it go to ``display``, each after the
    output the worker wrote before it (already in the pipes: drained first). The worker
    waits for ``shown`` before it goes on, so what it writes next comes after."""
    while True:
        header, _ = await read_frame(worker.replies)
        if "display" not in header:
            return header
        worker.drain()
        display(header["display"])
        os.write(worker.requests, encode({"shown": True}))


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


def _died(returncode: int, wall_ms: float, oom_before: int) -> Outcome:
    usage = Usage(wall_ms, 0.0, 0)
    if returncode < 0:
        return Outcome("failed", 128 - returncode, ended_by_signal(-returncode, oom_before), usage)
    return Outcome("failed", returncode, "exit", usage)
