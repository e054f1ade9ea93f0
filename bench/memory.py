"""Memory and processes as /proc reports them: PSS, RSS, which processes a sandbox or a
kernel has."""

import os
from collections import Counter
from pathlib import Path

from llmsafespace.runtime.local.layout import Layout


def _field_kib(path: str, name: str) -> int:
    """A `Name:   123 kB` line of a /proc file, in KiB (0 if the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def pss_kib(pid: int) -> int:
    """Proportional set size: shared pages split between the processes that map them."""
    return _field_kib(f"/proc/{pid}/smaps_rollup", "Pss")


def rss_kib(pid: int) -> int:
    return _field_kib(f"/proc/{pid}/status", "VmRSS")


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM)."""
    return _field_kib(f"/proc/{pid}/status", "VmHWM")


def available_kib() -> int:
    return _field_kib("/proc/meminfo", "MemAvailable")


def _socket_inodes(pid: int) -> dict[str, str]:
    """Socket inode → `unix` or `tcp`, from the process's network namespace tables."""
    kinds = {}
    for table, kind, column in (("unix", "unix", 6), ("tcp", "tcp", 9), ("tcp6", "tcp", 9)):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > column:
                kinds[fields[column]] = kind
    return kinds


def open_fds(pid: int) -> Counter[str]:
    """The process's open file descriptors by kind: unix, tcp, socket (other), pipe,
    anon_inode, file."""
    kinds: Counter[str] = Counter()
    try:
        entries = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return kinds
    sockets = _socket_inodes(pid)
    for entry in entries:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{entry}")
        except OSError:
            continue
        kind = target.split(":", 1)[0] if ":" in target else "file"
        if kind == "socket":
            kind = sockets.get(target.removeprefix("socket:[").removesuffix("]"), "socket")
        kinds[kind] += 1
    return kinds


def sandbox_uid(runtime_dir: Path, sandbox_id: str) -> int | None:
    """The host uid a local-driver sandbox runs as, from its recorded state."""
    meta = Layout(runtime_dir).read_meta(sandbox_id)
    return None if meta is None else meta.uid


def sandboxes_pss_kib(runtime_dir: Path, sandbox_ids: list[str]) -> list[int]:
    """PSS of every process of each local-driver sandbox (bwrap, agent, interpreter),
    from one pass over /proc (a pass per sandbox is quadratic in a fleet of 1,000)."""
    by_uid: Counter[int] = Counter()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (uid := _live_uid(entry)) is not None:
            by_uid[uid] += pss_kib(int(entry))
    uids = [sandbox_uid(runtime_dir, sandbox_id) for sandbox_id in sandbox_ids]
    return [0 if uid is None else by_uid[uid] for uid in uids]


def _live_uid(pid: str) -> int | None:
    """The real uid of a process that is not a zombie; None if it is one or is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    if "Uid" not in fields or fields.get("State", "").startswith("Z"):
        return None
    return int(fields["Uid"].split("\t")[0])


def pids_with_argument(text: str) -> list[int]:
    """Processes whose command line contains `text` (e.g. a kernel's connection file)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry))
    return found
