"""Where a sandbox's files live under the runtime dir, and its recorded state."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

SOCKET_NAME = "agent.sock"
TOKEN_NAME = "token"
MAX_SOCKET_PATH = 107


class SandboxMeta(BaseModel):
    """``meta.json``: what a later process needs to adopt or remove a sandbox."""

    sandbox_id: str
    uid: int
    pid: int
    token: str
    created_at: float
    security_level: str = "standard"  # "high": the agent runs under gVisor
    dns_filter_pid: int = 0  # egress restricted to hosts or networks: its DNS filter
    owner: str | None = None  # RuntimeOwner's value (None: made before owners were recorded)


class Layout:
    """Paths under one runtime dir."""

    def __init__(self, runtime_dir: Path) -> None:
        self.root = runtime_dir

    @property
    def agent(self) -> Path:
        """The agent package copy, readable by every sandbox uid."""
        return self.root / "agent"

    @property
    def image_templates(self) -> Path:
        """Empty workspace images, one per size, copied for each sandbox (root's alone)."""
        return self.root / "images"

    @property
    def etc(self) -> Path:
        """The synthetic ``/etc`` files."""
        return self.root / "etc"

    @property
    def gvisor_rootfs(self) -> Path:
        """The read-only root of every gVisor sandbox: mount points and ``/etc``."""
        return self.root / "gvisor-rootfs"

    @property
    def sandboxes(self) -> Path:
        return self.root / "sandboxes"

    def state(self, sandbox_id: str) -> Path:
        """Root-owned per-sandbox dir (meta.json, log)."""
        return self.sandboxes / sandbox_id

    def meta(self, sandbox_id: str) -> Path:
        return self.state(sandbox_id) / "meta.json"

    def run(self, sandbox_id: str) -> Path:
        """The dir bound into the sandbox holding the agent socket and token."""
        return self.state(sandbox_id) / "run"

    def bundle(self, sandbox_id: str) -> Path:
        """The OCI bundle (``config.json``) of a gVisor sandbox."""
        return self.state(sandbox_id) / "bundle"

    def runsc_root(self, sandbox_id: str) -> Path:
        """runsc's own state for a gVisor sandbox (goes with the state dir)."""
        return self.state(sandbox_id) / "runsc"

    def scratch(self, sandbox_id: str) -> tuple[Path, Path]:
        """The tmpfs mounts the driver makes for the sandbox's ``/tmp`` and ``/dev/shm``."""
        return self.state(sandbox_id) / "tmp", self.state(sandbox_id) / "shm"

    def image(self, sandbox_id: str) -> Path:
        """The sparse ext4 image loop-mounted as the sandbox's workspace."""
        return self.state(sandbox_id) / "workspace.img"

    def socket(self, sandbox_id: str) -> Path:
        return self.run(sandbox_id) / SOCKET_NAME

    def workspace(self, sandbox_id: str) -> Path:
        return self.root / "workspaces" / sandbox_id

    def write_meta(self, meta: SandboxMeta) -> None:
        """Record ``meta``, readable by root only (it holds the agent's token)."""
        path = self.meta(meta.sandbox_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with open(fd, "w") as file:
            file.write(meta.model_dump_json())
        path.chmod(0o600)  # a meta.json from before this rule

    def read_meta(self, sandbox_id: str) -> SandboxMeta | None:
        """The recorded state, or None if absent or unreadable."""
        try:
            return SandboxMeta.model_validate_json(self.meta(sandbox_id).read_text())
        except (OSError, ValueError):
            return None

    def sandbox_ids(self) -> list[str]:
        """Every sandbox with a state dir."""
        if not self.sandboxes.is_dir():
            return []
        return sorted(entry.name for entry in self.sandboxes.iterdir() if entry.is_dir())
