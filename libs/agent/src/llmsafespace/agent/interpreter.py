"""``run_code``: one persistent worker interpreter; calls are serialized and stopped on time."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from typing import Any

from .outcome import Outcome, Sink, Usage, stopped
from .pipes import PipeReader, discard
from .processes import ended_by_signal, exit_watch, oom_kills
from .protocol import Frame, encode, read_frame

INTERRUPT_GRACE = 2.0
RESTART_NOTICE = "\n[agent] the interpreter did not stop and was restarted; its state is lost\n"


@dataclass
class _Worker:
    """One live interpreter process and its pipes."""

    proc: subprocess.Popen[bytes]
    requests: int
    replies: asyncio.StreamReader
    reply_transport: asyncio.ReadTransport
    stdout: PipeReader
    stderr: PipeReader
    exited: asyncio.Future[None]

    @classmethod
    async def start(cls, python: str, cwd: str, env: dict[str, str]) -> _Worker:
        request_r, request_w = os.pipe()
        reply_r, reply_w = os.pipe()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        child_ends = (request_r, reply_w, out_w, err_w)
        try:
            proc = subprocess.Popen(  # noqa: ASYNC220 - fork/exec is quick
                [python, "-s", "-m", "llmsafespace.agent.worker", str(request_r), str(reply_w)],
                stdin=subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                pass_fds=(request_r, reply_w),
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        finally:
            for fd in child_ends:
                os.close(fd)
        loop = asyncio.get_running_loop()
        replies = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(replies), os.fdopen(reply_r, "rb", buffering=0)
        )
        return cls(
            proc=proc,
            requests=request_w,
            replies=replies,
            reply_transport=transport,
            stdout=PipeReader(out_r, "stdout"),
            stderr=PipeReader(err_r, "stderr"),
            exited=exit_watch(proc.pid),
        )

    def listen(self, sink: Sink) -> None:
        self.stdout.sink = self.stderr.sink = sink

    def drain(self) -> None:
        self.stdout.drain()
        self.stderr.drain()

    async def kill(self) -> None:
        """Kill the worker and everything it started, reap it and release its pipes."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        await asyncio.shield(self.exited)
        await self.close()

    async def close(self) -> None:
        """Release the pipes of an exited worker and reap it."""
        await asyncio.shield(self.exited)
        self.proc.wait()
        for pipe in (self.stdout, self.stderr):
            pipe.stop()
            os.close(pipe.fd)
        os.close(self.requests)
        self.reply_transport.close()


class Interpreter:
    """A notebook-like Python kernel: variables survive between calls; calls run one at a time."""

    def __init__(self, python: str, cwd: str, env: dict[str, str]) -> None:
        self._python = python
        self._cwd = cwd
        self._env = env
        self._lock = asyncio.Lock()
        self._worker: _Worker | None = None

    async def warm(self) -> None:
        """Start the worker ahead of the first call (that call then only runs code)."""
        async with self._lock:
            if self._worker is None:
                await self._fresh()

    async def _fresh(self) -> _Worker:
        self._worker = await _Worker.start(self._python, self._cwd, self._env)
        return self._worker

    async def run(
        self, code: str, *, time_limit: float, sink: Sink, cancel: asyncio.Event
    ) -> Outcome:
        """Run one cell; stop it after ``time_limit`` seconds or when ``cancel`` is set."""
        async with self._lock:
            worker = self._worker or await self._fresh()
            worker.listen(sink)
            try:
                return await self._run(worker, code, time_limit, sink, cancel)
            finally:
                worker.listen(discard)

    async def _run(
        self, worker: _Worker, code: str, time_limit: float, sink: Sink, cancel: asyncio.Event
    ) -> Outcome:
        loop = asyncio.get_running_loop()
        started = loop.time()
        oom_before = oom_kills()
        reply = asyncio.ensure_future(read_frame(worker.replies))
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
                    os.kill(worker.proc.pid, signal.SIGINT)
                waiting = {reply, worker.exited}
                await asyncio.wait(waiting, timeout=INTERRUPT_GRACE, return_when="FIRST_COMPLETED")
        finally:
            stop.cancel()
        wall_ms = (loop.time() - started) * 1000.0
        if reply.done() and reply.exception() is None:
            worker.drain()
            header, _ = reply.result()
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
        return _died(worker.proc.returncode, wall_ms, oom_before)

    async def close(self) -> None:
        """Stop the worker."""
        if self._worker is not None:
            await self._worker.kill()
            self._worker = None


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
