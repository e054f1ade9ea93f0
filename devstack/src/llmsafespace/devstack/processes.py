"""Child processes: spawn one with its output in a log file, wait for it, stop it."""

import asyncio
import ctypes
import os
import signal
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from llmsafespace.devstack.errors import StartupError
from llmsafespace.devstack.system_user import SystemUser

Process = subprocess.Popen[bytes]
PR_SET_PDEATHSIG = 1


def _terminate_with_parent() -> None:
    """In the child, before exec (and after any change of user, which would clear it)."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: Sequence[str | Path],
    *,
    log_path: Path,
    env: Mapping[str, str],
    run_as: SystemUser | None = None,
) -> Process:
    """Start argv in its own session (so a terminal's Ctrl-C reaches only the devstack);
    it gets SIGTERM should the devstack die without stopping it (e.g. kill -9)."""
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)  # a log from an older run may have been 0644
    with os.fdopen(fd, "ab") as log:
        if run_as is None:
            return subprocess.Popen(
                [str(arg) for arg in argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
                preexec_fn=_terminate_with_parent,
            )
        return subprocess.Popen(
            [str(arg) for arg in argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            preexec_fn=_terminate_with_parent,
            user=run_as.uid,
            group=run_as.gid,
            extra_groups=[],
        )


async def stop(process: Process, sig: int = signal.SIGTERM, grace: float = 10.0) -> int:
    """Send sig, wait up to grace seconds, then SIGKILL; return the exit code."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            return await asyncio.to_thread(process.wait, grace)
        except subprocess.TimeoutExpired:
            process.kill()
    return await asyncio.to_thread(process.wait)


def log_tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


async def wait_ready(
    name: str,
    probe: Callable[[], Awaitable[bool]],
    *,
    process: Process | None,
    log_path: Path,
    within: float,
    interval: float = 0.1,
) -> None:
    """Poll probe until it answers True; raise StartupError with the log tail otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if process is not None and process.poll() is not None:
            reason = f"exited with code {process.returncode}"
            break
        try:
            if await probe():
                return
        except OSError:
            pass
        if loop.time() >= deadline:
            reason = f"not ready after {within:.0f} s"
            break
        await asyncio.sleep(interval)
    raise StartupError(f"{name} {reason}; last lines of {log_path}:\n{log_tail(log_path)}")
