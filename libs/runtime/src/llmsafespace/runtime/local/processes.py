"""Host processes of a sandbox uid: finding them, killing them all, starting one detached."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RuntimeUnavailable

KILL_TIMEOUT = 5.0

# Runs as root: joins the sandbox's cgroups (before the uid switch, so everything the
# sandbox starts is inside), lowers the rlimits, then starts ``setpriv ... bwrap`` in the
# background and prints its pid (setpriv execs bwrap: same pid), so bwrap is not our child:
# it outlives us and is never our zombie. Its stdout and stderr go to the log file.
_DETACH = """for f in {procs}; do echo $$ > "$f"; done
ulimit -c 0; ulimit -n {nofile}; ulimit -f {fsize_blocks}
setpriv --reuid={uid} --regid={uid} --clear-groups --no-new-privs -- "$@" </dev/null >&2 &
echo $!"""
SETPRIV = "/usr/bin/setpriv"


@dataclass(frozen=True)
class Confinement:
    """What a sandbox's first process is started inside of."""

    uid: int
    cgroup_procs: tuple[Path, ...] = ()
    nofile: int = 1024
    fsize_bytes: int | None = 2**30  # None: unlimited
    pass_fds: tuple[int, ...] = field(default=())


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
    """True if ``pid`` is a live process (not a zombie) of ``uid``; one /proc read."""
    status = _status(str(pid))
    return status.get("Uid", "").split("\t")[:1] == [str(uid)] and not status.get(
        "State", "Z"
    ).startswith("Z")


def is_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (whatever its uid)."""
    try:
        stat = Path("/proc", str(pid), "stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def switching_uid(pid: int) -> bool:
    """True while ``pid`` is still the ``setpriv`` of ``spawn_detached``: root for a
    moment after its pid is known, before it becomes the sandbox's first process."""
    try:
        return Path("/proc", str(pid), "comm").read_text() == "setpriv\n"
    except OSError:
        return False


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


def spawn_detached(argv: list[str], confinement: Confinement, log: Path) -> int:
    """Start ``argv`` confined (own uid, no groups, empty environment, new session); its pid."""
    script = _DETACH.format(
        procs=" ".join(shlex.quote(str(path)) for path in confinement.cgroup_procs),
        nofile=confinement.nofile,
        fsize_blocks="unlimited"
        if confinement.fsize_bytes is None
        else max(1, confinement.fsize_bytes // 512),
        uid=confinement.uid,
    )
    with log.open("ab") as stderr:
        done = subprocess.run(
            ["/bin/sh", "-c", script, "sh", *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={},
            pass_fds=confinement.pass_fds,
            start_new_session=True,
            check=True,
            cwd="/",
        )
    return int(done.stdout)
