"""Removing sandboxes: one, or every one recorded under a runtime dir."""

from __future__ import annotations

import shutil
from pathlib import Path

from .config import LocalConfig
from .layout import Layout
from .processes import kill_all
from .uids import UidRegistry


def remove(layout: Layout, registry: UidRegistry, sandbox_id: str) -> bool:
    """Kill a sandbox's processes, delete its dirs, free its uid; False if nothing was there."""
    owned = [uid for uid, held in registry.held_by(layout.root).items() if held == sandbox_id]
    found = bool(owned) or layout.state(sandbox_id).exists()
    for uid in owned:
        kill_all(uid)
    shutil.rmtree(layout.workspace(sandbox_id), ignore_errors=True)
    shutil.rmtree(layout.state(sandbox_id), ignore_errors=True)
    for uid in owned:
        registry.release(uid)
    return found


def sweep(runtime_dir: Path, config: LocalConfig | None = None) -> int:
    """Remove every sandbox recorded under ``runtime_dir``; how many there were."""
    config = config or LocalConfig(runtime_dir=runtime_dir)
    layout, registry = Layout(runtime_dir), config.uid_registry()
    ids = set(layout.sandbox_ids()) | set(registry.held_by(runtime_dir).values())
    return sum(remove(layout, registry, sandbox_id) for sandbox_id in sorted(ids))
