"""Removing sandboxes: one, or every one recorded under a runtime dir; stale leftovers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

from . import network
from .cgroups import Cgroups
from .config import LocalConfig
from .layout import Layout
from .mounts import mounted_under, unmount
from .processes import kill_all
from .uids import UidRegistry


def remove(layout: Layout, registry: UidRegistry, sandbox_id: str, cgroups: Cgroups | None) -> bool:
    """Kill a sandbox's processes, delete its cgroup, mount and dirs, free its uid.

    False if nothing was there.

    The uid is killed and freed under the registry lock, and only while the registry
    still names this sandbox: two removes of one sandbox may run at once (a cancelled
    create's cleanup and a destroy), and once the first has freed the uid a new sandbox
    may hold it, whose processes a kill by uid would end.
    """
    found = layout.state(sandbox_id).exists()
    meta = layout.read_meta(sandbox_id)
    with registry.locked():
        held = registry.held_by(layout.root).items()
        owned = [uid for uid, holder in held if holder == sandbox_id]
        for uid in owned:
            if cgroups is not None:
                cgroups.destroy(uid)
            kill_all(uid)
        if meta is not None and meta.dns_filter_pid:
            stop_dns_filter(meta.dns_filter_pid)  # root, so not among the uid's processes
            if meta.uid in owned:
                network.remove_egress(meta.uid)
        for uid in owned:
            registry.release(uid)
    for path in (layout.workspace(sandbox_id), *layout.scratch(sandbox_id)):
        unmount(path)
    shutil.rmtree(layout.workspace(sandbox_id), ignore_errors=True)
    shutil.rmtree(layout.state(sandbox_id), ignore_errors=True)
    return found or bool(owned)


def stop_dns_filter(pid: int) -> None:
    """SIGKILL a sandbox's DNS filter (after checking the pid is still one)."""
    with contextlib.suppress(OSError):
        if b"dnsfilter.py" in Path("/proc", str(pid), "cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)


def clean_stale(layout: Layout, registry: UidRegistry, cgroups: Cgroups | None) -> None:
    """Remove sandbox cgroups and egress tables whose uid nobody holds, and workspace
    mounts without a sandbox."""
    if cgroups is not None:
        # Under the registry lock: a uid freed meanwhile and handed to a new sandbox
        # must not have that sandbox's fresh cgroup taken for a stale one.
        with registry.locked():
            for uid in cgroups.uids() - registry.held():
                cgroups.destroy(uid)
    if os.access(network.NFT, os.X_OK):
        with registry.locked():
            for uid in network.egress_uids() - registry.held():
                network.remove_egress(uid)
    known = set(layout.sandbox_ids())
    for point in mounted_under(layout.root / "workspaces"):
        if point.parent == layout.root / "workspaces" and point.name not in known:
            unmount(point)


def sweep(runtime_dir: Path, config: LocalConfig | None = None) -> int:
    """Remove every sandbox recorded under ``runtime_dir``; how many there were."""
    config = config or LocalConfig(runtime_dir=runtime_dir)
    layout, registry, cgroups = Layout(runtime_dir), config.uid_registry(), config.cgroups()
    ids = set(layout.sandbox_ids()) | set(registry.held_by(runtime_dir).values())
    return sum(remove(layout, registry, sandbox_id, cgroups) for sandbox_id in sorted(ids))
