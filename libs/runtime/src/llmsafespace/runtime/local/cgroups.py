"""Per-sandbox cgroups (v1 or v2, detected at start) under one capped parent.

Every sandbox gets a cgroup named for its host uid (``sb-<uid>``, unique host-wide while
the uid is held) in each controller it needs: memory (no swap), pids and cpu (a CFS
quota), and on v1 also cpuacct where mounted (it only counts: v2's ``cpu.stat`` counts
by itself) and the freezer where mounted (v2 freezes any cgroup with ``cgroup.freeze``).
The parent, ``llmsafespace`` at the top of each hierarchy by default, carries
the overall cap for all sandboxes together. Teardown kills what is left in the cgroup
and removes it.

Moving a process into a cgroup takes the kernel's global threadgroup lock for writing,
which by default waits for an RCU grace period: ~7 ms for each sandbox's first process,
a tenth of a cold start. ``favor_moves`` remounts the host's cgroup2 hierarchy with
``favordynmods`` (Linux 6.0+), which keeps that lock ready for writers (the lock is
global, so this helps v1 controllers too) at the price of a slightly slower fork and exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from ..errors import DriverError, RuntimeUnavailable, UnsupportedSpec

CONTROLLERS = ("memory", "pids", "cpu")
ACCOUNTING = "cpuacct"  # v1 only, optional: CPU time used
FREEZER = "freezer"  # v1 only, optional: pause and resume
FREEZE_TIMEOUT = 10.0
CPU_PERIOD_US = 100_000
FAVOR_MOVES = "favordynmods"
KILL_TIMEOUT = 5.0
PREFIX = "sb-"


class CgroupVersion(StrEnum):
    V1 = "v1"
    V2 = "v2"


@dataclass(frozen=True)
class Usage:
    """What one cgroup uses now; None where this hierarchy does not say."""

    cpu_ms: float | None
    memory_bytes: int | None
    memory_limit_bytes: int | None
    pids: int | None


def _read_int(path: Path) -> int | None:
    """An integer cgroup file; None when absent, unreadable or ``max``."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat_field(path: Path, key: str) -> int | None:
    """One ``key value`` line of a flat-keyed cgroup file (``cpu.stat``)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(" ")
        if name == key:
            try:
                return int(value)
            except ValueError:
                return None
    return None


@dataclass(frozen=True)
class Limits:
    """What one cgroup may use."""

    cpu: float
    memory_bytes: int
    pids: int


def cgroup_mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, super options) of every cgroup mount."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        tail = fields[fields.index("-") + 1 :]
        if tail[0] in ("cgroup", "cgroup2"):
            found.append((fields[4], tail[0], set(tail[2].split(","))))
    return found


def favor_moves() -> bool:
    """Remount the cgroup2 hierarchy with ``favordynmods`` (see the module's docstring);
    True when it carries the option now. Idempotent; False on kernels without it, hosts
    without cgroup2, or where the mount may not be changed (a container's)."""
    for point, kind, options in cgroup_mounts():
        if kind != "cgroup2":
            continue
        if FAVOR_MOVES not in options:
            # mount(8) keeps the options already set (mount(2) alone would drop them)
            subprocess.run(
                ["mount", "-o", f"remount,{FAVOR_MOVES}", point],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        return any(FAVOR_MOVES in now for at, _, now in cgroup_mounts() if at == point)
    return False


def _write(path: Path, value: str | int) -> None:
    path.write_text(str(value))


class Cgroups:
    """The sandbox parent cgroup in each controller hierarchy, and its children."""

    def __init__(self, version: CgroupVersion, parents: dict[str, Path]) -> None:
        self.version = version
        self._parents = parents  # controller -> parent dir (v2: one dir for all)

    @classmethod
    def detect(cls, parent: str = "llmsafespace") -> Cgroups | None:
        """The hierarchy this host offers for memory, pids and cpu; None if it has none."""
        mounts = cgroup_mounts()
        v1 = {
            controller: Path(point) / parent
            for point, kind, options in mounts
            if kind == "cgroup"
            for controller in (*CONTROLLERS, ACCOUNTING, FREEZER)
            if controller in options
        }
        if set(CONTROLLERS) <= set(v1):
            return cls(CgroupVersion.V1, v1)
        for point, kind, _ in mounts:
            available = (Path(point) / "cgroup.controllers").read_text().split()
            if kind == "cgroup2" and set(CONTROLLERS) <= set(available):
                return cls(CgroupVersion.V2, dict.fromkeys(CONTROLLERS, Path(point) / parent))
        return None

    def _parent_dirs(self) -> list[Path]:
        return sorted(set(self._parents.values()))

    def setup(self, cap: Limits) -> None:
        """Create the parent(s) and write the overall cap; safe to repeat."""
        for directory in self._parent_dirs():
            if self.version is CgroupVersion.V2:
                _write(directory.parent / "cgroup.subtree_control", "+memory +pids +cpu")
            directory.mkdir(exist_ok=True)
            if self.version is CgroupVersion.V2:
                _write(directory / "cgroup.subtree_control", "+memory +pids +cpu")
        self._limit(self._parents, cap)

    def dirs(self, uid: int) -> dict[str, Path]:
        """The cgroup dirs of the sandbox running as ``uid``."""
        return {
            controller: parent / f"{PREFIX}{uid}" for controller, parent in self._parents.items()
        }

    def create(self, uid: int, limits: Limits) -> list[Path]:
        """Make the sandbox's cgroup with its limits; the ``cgroup.procs`` files to join."""
        dirs = self.dirs(uid)
        for directory in set(dirs.values()):
            directory.mkdir(exist_ok=True)
        self._limit(dirs, limits)
        return sorted({directory / "cgroup.procs" for directory in dirs.values()})

    def _limit(self, dirs: dict[str, Path], limits: Limits) -> None:
        quota = max(1000, int(limits.cpu * CPU_PERIOD_US))
        memory, pids, cpu = dirs["memory"], dirs["pids"], dirs["cpu"]
        if self.version is CgroupVersion.V1:
            _write(memory / "memory.limit_in_bytes", limits.memory_bytes)
            if (memory / "memory.memsw.limit_in_bytes").exists():
                _write(memory / "memory.memsw.limit_in_bytes", limits.memory_bytes)
            with contextlib.suppress(OSError):  # not writable on the root's direct child
                _write(memory / "memory.swappiness", 0)
            _write(cpu / "cpu.cfs_period_us", CPU_PERIOD_US)
            _write(cpu / "cpu.cfs_quota_us", quota)
        else:
            _write(memory / "memory.max", limits.memory_bytes)
            with contextlib.suppress(FileNotFoundError):
                _write(memory / "memory.swap.max", 0)
            _write(cpu / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        _write(pids / "pids.max", limits.pids)

    def oom_file(self, uid: int) -> Path:
        """The file whose ``oom_kill`` counter grows when the kernel OOM-kills in the sandbox."""
        memory = self.dirs(uid)["memory"]
        name = "memory.oom_control" if self.version is CgroupVersion.V1 else "memory.events"
        return memory / name

    def peak_memory(self, uid: int) -> int:
        """The sandbox's peak memory use so far (bytes), 0 when unknown."""
        memory = self.dirs(uid)["memory"]
        name = "memory.max_usage_in_bytes" if self.version is CgroupVersion.V1 else "memory.peak"
        try:
            return int((memory / name).read_text())
        except (OSError, ValueError):
            return 0

    def usage(self, uid: int) -> Usage | None:
        """The sandbox's resource use now; None when its cgroup is gone."""
        dirs = self.dirs(uid)
        memory, pids = dirs["memory"], dirs["pids"]
        if not memory.is_dir():
            return None
        if self.version is CgroupVersion.V1:
            accounting = dirs.get(ACCOUNTING)
            nanoseconds = None if accounting is None else _read_int(accounting / "cpuacct.usage")
            cpu_ms = None if nanoseconds is None else nanoseconds / 1e6
            current = _read_int(memory / "memory.usage_in_bytes")
            limit = _read_int(memory / "memory.limit_in_bytes")
        else:
            microseconds = _stat_field(dirs["cpu"] / "cpu.stat", "usage_usec")
            cpu_ms = None if microseconds is None else microseconds / 1e3
            current = _read_int(memory / "memory.current")
            limit = _read_int(memory / "memory.max")
        return Usage(
            cpu_ms=cpu_ms,
            memory_bytes=current,
            memory_limit_bytes=limit,
            pids=_read_int(pids / "pids.current"),
        )

    def _freezer(self, uid: int) -> tuple[Path, str, str, Path]:
        """(file to write, value to freeze, value to thaw, file that reports the state)."""
        if self.version is CgroupVersion.V2:
            directory = self.dirs(uid)["cpu"]
            return directory / "cgroup.freeze", "1", "0", directory / "cgroup.events"
        if FREEZER not in self._parents:
            raise UnsupportedSpec("pause needs the cgroup v1 freezer controller mounted")
        state = self.dirs(uid)[FREEZER] / "freezer.state"
        return state, "FROZEN", "THAWED", state

    def _set_frozen(self, uid: int, frozen: bool) -> None:
        control, freeze, thaw, report = self._freezer(uid)
        if not control.exists():
            raise UnsupportedSpec(f"the sandbox of uid {uid} has no freezer cgroup")
        _write(control, freeze if frozen else thaw)
        # v1 passes through FREEZING; v2 reports `frozen 1` once every task has stopped.
        done = "FROZEN" if frozen else "THAWED"
        if self.version is CgroupVersion.V2:
            done = "1" if frozen else "0"
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while True:
            now = (
                _stat_field(report, "frozen")
                if self.version is CgroupVersion.V2
                else report.read_text().strip()
            )
            if str(now) == done:
                return
            if time.monotonic() > deadline:
                raise RuntimeUnavailable(f"cgroup of uid {uid} did not reach {done}: {now}")
            time.sleep(0.005)

    def freeze(self, uid: int) -> None:
        """Stop every process of the sandbox where it is (memory kept); returns once stopped."""
        self._set_frozen(uid, True)

    def thaw(self, uid: int) -> None:
        """Let the sandbox's processes run again."""
        self._set_frozen(uid, False)

    def frozen(self, uid: int) -> bool:
        """Whether the sandbox is frozen or being frozen (v1 reports FREEZING until every
        task has stopped): a freeze was written and no thaw since. False where it cannot
        be frozen (no freezer, no cgroup)."""
        try:
            control, _, thaw, _ = self._freezer(uid)
            return control.read_text().strip() != thaw
        except (UnsupportedSpec, FileNotFoundError):
            return False

    def destroy(self, uid: int) -> None:
        """Kill every process in the sandbox's cgroup (thawed first: frozen tasks on v1
        cannot die) and remove it; idempotent."""
        with contextlib.suppress(OSError, DriverError):
            self.thaw(uid)
        dirs = sorted(set(self.dirs(uid).values()))
        deadline = time.monotonic() + KILL_TIMEOUT
        for directory in dirs:
            if not directory.exists():
                continue
            if self.version is CgroupVersion.V2:
                with contextlib.suppress(OSError):
                    _write(directory / "cgroup.kill", 1)
            while True:
                try:
                    pids = [int(p) for p in (directory / "cgroup.procs").read_text().split()]
                except FileNotFoundError:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        raise RuntimeUnavailable(
                            f"cannot remove cgroup {directory}: {exc}"
                        ) from exc
                    time.sleep(0.002)

    def uids(self) -> set[int]:
        """The uids that have a sandbox cgroup now."""
        found = set()
        for parent in self._parent_dirs():
            if not parent.is_dir():
                continue
            for entry in parent.iterdir():
                if entry.is_dir() and entry.name.startswith(PREFIX):
                    with contextlib.suppress(ValueError):
                        found.add(int(entry.name.removeprefix(PREFIX)))
        return found
