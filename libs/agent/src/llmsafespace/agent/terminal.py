"""``open_terminal``: the user's shell on a pseudo-terminal, forked like a command (same
sandbox, limits and uid), its own session with the PTY as controlling terminal so Ctrl-C
and job control reach the foreground process. Input arrives as ``stdin`` frames, size
changes as ``resize`` frames; output leaves as ``output`` frames; cancel hangs it up."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import struct
import termios
import time

from .cancel import Cancel
from .commands import StdinQueue, feed_input, reap, stop_feeding, used
from .frames import Outcome
from .outcome import Sink, cut_short
from .pipes import PipeReader, stream_until
from .processes import exit_fd

MAX_SIZE = 1000
SHELLS = ("/bin/bash", "/bin/sh")
TERM = "xterm-256color"


class TerminalError(ValueError):
    """A size outside 1..MAX_SIZE (or not an integer)."""


def checked_size(cols: object, rows: object) -> tuple[int, int]:
    for name, value in (("cols", cols), ("rows", rows)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIZE:
            raise TerminalError(f"{name} must be an integer in 1..{MAX_SIZE}")
    return cols, rows  # type: ignore[return-value]


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


JOB_SIGNALS = (
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTSTP,
    signal.SIGTTIN,
    signal.SIGTTOU,
    signal.SIGHUP,
)


def _take_terminal() -> None:
    """In the child, after setsid: the PTY (its stdin) becomes the controlling terminal,
    and the keyboard's signals act as on any terminal (whatever the agent inherited)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    for signum in JOB_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


class Terminal:
    """One shell on a PTY; `resize` may be called while `run` runs."""

    def __init__(self, cols: int, rows: int) -> None:
        self._size = checked_size(cols, rows)
        self._master: int | None = None

    def resize(self, cols: object, rows: object) -> None:
        """Set the window size; the kernel tells the foreground process (SIGWINCH)."""
        self._size = checked_size(cols, rows)
        if self._master is not None:
            _set_size(self._master, *self._size)

    def run(
        self,
        *,
        env: dict[str, str],
        cwd: str,
        stdin: StdinQueue,
        time_limit: float,
        sink: Sink,
        cancel: Cancel,
    ) -> Outcome:
        import subprocess  # on first use: the idle agent stays small

        started = time.monotonic()
        master, slave = os.openpty()
        try:
            _set_size(master, *self._size)
            shell = next((path for path in SHELLS if os.access(path, os.X_OK)), SHELLS[-1])
            proc = subprocess.Popen(
                [shell],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                cwd=cwd,
                env={**env, "TERM": TERM},
                start_new_session=True,
                preexec_fn=_take_terminal,  # one ioctl in the child, no locks taken
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self._master = master
        reader = PipeReader(master, "stdout")
        reader.sink = sink
        feed_input(os.dup(master), stdin)
        exited = exit_fd(proc.pid)
        try:
            ended = stream_until([reader], exited, cancel, started + time_limit)
            if ended != "exit":
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGHUP)
                    os.killpg(proc.pid, signal.SIGKILL)
            status, rusage = reap(proc.pid)
        finally:
            os.close(exited)
            stop_feeding(stdin)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        reader.stop()
        self._master = None
        os.close(master)
        usage = used(started, rusage)
        if ended != "exit":
            return cut_short(cancel, usage)
        code = 128 - proc.returncode if proc.returncode < 0 else proc.returncode
        return Outcome("completed" if code == 0 else "failed", code, "exit", usage)
