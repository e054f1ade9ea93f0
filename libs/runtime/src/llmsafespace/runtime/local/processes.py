"""Host processes of a sandbox uid: finding them, killing them all, starting one detached."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from ..errors import RuntimeUnavailable

KILL_TIMEOUT = 5.0

# Runs bwrap in the background and prints its pid, so bwrap is not our child: it outlives
# us and is never our zombie. bwrap's stdout and stderr go to our stderr (the log file).
_DETACH = '"$@" </dev/null >&2 & echo $!'


def _status(pid: str) -> dict[str, str]:
    try:
        text = Path("/proc", pid, "status").read_text()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def live_pids(uid: int) -> list[int]:
    """Processes (not zombies) whose real uid is ``uid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        status = _status(entry)
        if status.get("Uid", "").split("\t")[:1] == [str(uid)] and not status.get(
            "State", ""
        ).startswith("Z"):
            pids.append(int(entry))
    return pids


def is_alive(pid: int, uid: int) -> bool:
    """True if ``pid`` is a live process of ``uid``."""
    return pid in live_pids(uid)


def kill_all(uid: int) -> None:
    """SIGKILL every process of ``uid`` until none is left."""
    deadline = time.monotonic() + KILL_TIMEOUT
    while pids := live_pids(uid):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        if time.monotonic() > deadline:
            raise RuntimeUnavailable(f"processes of uid {uid} survived SIGKILL: {pids}")
        time.sleep(0.005)


def spawn_detached(argv: list[str], uid: int, log: Path) -> int:
    """Start ``argv`` as ``uid`` (no groups, empty environment) in a new session; its pid."""
    with log.open("ab") as stderr:
        done = subprocess.run(
            ["/bin/sh", "-c", _DETACH, "sh", *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={},
            user=uid,
            group=uid,
            extra_groups=[],
            start_new_session=True,
            check=True,
            cwd="/",
        )
    return int(done.stdout)
