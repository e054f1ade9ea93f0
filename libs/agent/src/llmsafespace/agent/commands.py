"""``run_command``: a shell command in its own process group, streamed, with a deadline."""

from __future__ import annotations

import contextlib
import os
import queue
import resource
import select
import signal
import threading
import time

from .cancel import Cancel
from .frames import Outcome, Usage
from .outcome import Sink, cut_short
from .pipes import PipeReader, stream_until
from .processes import ended_by_signal, exit_fd, oom_kills
from .protocol import TYPE_CHECKING

StdinQueue = queue.SimpleQueue[tuple[str, bool]]
"""Input for a running command: (text, eof); eof closes its stdin after the text."""
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

    Spawn = Callable[[Callable[[], subprocess.Popen[bytes]]], subprocess.Popen[bytes]]


def feed_input(fd: int, inbound: StdinQueue) -> threading.Thread:
    """A thread writing queued input to the child's stdin until eof; it owns ``fd``.
    Input after the command closed its stdin or exited goes nowhere.

    ``fd`` may be non-blocking: a PTY master shares its flags with the output reader's
    descriptor. A full tty then waits (poll) until the child reads, rather than failing
    and dropping this input and all that follows; a hung-up tty ends the wait."""

    def feed() -> None:
        writable = select.poll()
        writable.register(fd, select.POLLOUT)
        try:
            while True:
                text, eof = inbound.get()
                data = text.encode()
                while data:
                    try:
                        data = data[os.write(fd, data) :]
                    except BlockingIOError:
                        writable.poll()
                if eof:
                    return
        except OSError:
            return
        finally:
            os.close(fd)

    thread = threading.Thread(target=feed, name="stdin", daemon=True)
    thread.start()
    return thread


def stop_feeding(inbound: StdinQueue) -> None:
    """End the feeder once it has written what was queued (writes to a command that is
    gone fail, and it ends)."""
    inbound.put(("", True))


def reap(pid: int) -> tuple[int, resource.struct_rusage]:
    """Reap an exited child, with its resource usage."""
    _, status, rusage = os.wait4(pid, 0)
    return status, rusage


def used(started: float, rusage: resource.struct_rusage) -> Usage:
    """What a reaped child used: the wall time since ``started`` (monotonic), its CPU time
    and its peak memory (``ru_maxrss`` is in KiB)."""
    return Usage(
        wall_ms=(time.monotonic() - started) * 1000.0,
        cpu_ms=(rusage.ru_utime + rusage.ru_stime) * 1000.0,
        peak_memory_bytes=rusage.ru_maxrss * 1024,
    )


def run_command(
    command: str,
    *,
    time_limit: float,
    env: dict[str, str],
    cwd: str,
    sink: Sink,
    cancel: Cancel,
    stdin: StdinQueue | None = None,
    spawn: Spawn | None = None,
) -> Outcome:
    """Run ``/bin/sh -c command``; when it ends (or on timeout or cancel) kill its whole
    process group.
    With ``stdin`` its stdin is a pipe fed from that queue, else it is empty. ``spawn``
    starts the shell (the agent's makes room when the pids limit refuses it)."""
    import subprocess  # on first use: the idle agent stays small

    def shell() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )

    started = time.monotonic()
    oom_before = oom_kills()
    proc = shell() if spawn is None else spawn(shell)
    assert proc.stdout is not None
    assert proc.stderr is not None
    pipes = [PipeReader(proc.stdout.fileno(), "stdout"), PipeReader(proc.stderr.fileno(), "stderr")]
    for pipe in pipes:
        pipe.sink = sink
    feeder = None
    if stdin is not None and proc.stdin is not None:
        # The feeder owns the fd from here (closes it on eof or when the command ends).
        feeder = feed_input(os.dup(proc.stdin.fileno()), stdin)
        proc.stdin.close()
    exited = exit_fd(proc.pid)
    try:
        ended = stream_until(pipes, exited, cancel, started + time_limit)
        # What the command left running in its group (``cmd &``, a fork bomb) ends with it;
        # the shell is not reaped yet, so its pid still names this group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        status, rusage = reap(proc.pid)
    finally:
        os.close(exited)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if feeder is not None and stdin is not None:
        stop_feeding(stdin)
    for pipe in pipes:
        pipe.stop()
    proc.stdout.close()
    proc.stderr.close()
    usage = used(started, rusage)
    if ended != "exit":
        return cut_short(cancel, usage)
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return Outcome("failed", 128 + signum, ended_by_signal(signum, oom_before), usage)
    code = os.WEXITSTATUS(status)
    return Outcome("completed" if code == 0 else "failed", code, "exit", usage)
