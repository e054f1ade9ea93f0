"""Removing sandboxes: one, or every one recorded under a runtime dir."""

from __future__ import annotations

import shutil
from pathlib import Path

from . import uids
from .layout import Layout
from .processes import kill_all


def remove(layout: Layout, sandbox_id: str) -> bool:
    """Kill a sandbox's processes, delete its dirs, free its uid; False if nothing was there."""
    owned = [uid for uid, owner in uids.holders(layout.uids).items() if owner == sandbox_id]
    found = bool(owned) or layout.state(sandbox_id).exists()
    for uid in owned:
        kill_all(uid)
    shutil.rmtree(layout.workspace(sandbox_id), ignore_errors=True)
    shutil.rmtree(layout.state(sandbox_id), ignore_errors=True)
    for uid in owned:
        uids.release(layout.uids, uid)
    return found


def sweep(runtime_dir: Path) -> int:
    """Remove every sandbox recorded under ``runtime_dir``; how many there were."""
    layout = Layout(runtime_dir)
    ids = set(layout.sandbox_ids()) | set(uids.holders(layout.uids).values())
    return sum(remove(layout, sandbox_id) for sandbox_id in sorted(ids))
