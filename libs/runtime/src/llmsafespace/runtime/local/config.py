"""Settings of the local (bubblewrap) driver."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .cgroups import Cgroups, Limits
from .uids import UidRegistry


class LocalConfig(BaseModel):
    """Where sandbox state lives, which host uids sandboxes get, and which interpreters exist."""

    model_config = ConfigDict(frozen=True)

    runtime_dir: Path
    uid_registry_dir: Path = Path("/run/llmsafespace/uids")
    uid_base: int = Field(default=200000, ge=1000)
    uid_count: int = Field(default=4096, ge=1)
    interpreters: dict[str, str] = Field(
        default_factory=lambda: {"python:3.11": "/usr/bin/python3.11"}
    )
    packages: dict[str, Path] = Field(
        default_factory=dict,
        description="Runtime name → host dir of its preinstalled Python packages (read-only)",
    )
    languages: dict[str, str] = Field(
        default_factory=dict,
        description="Runtime name → language of its run_code (python when absent)",
    )
    ready_timeout: float = Field(default=30.0, gt=0, description="Seconds for the agent to answer")
    cgroup_parent: str = Field(
        default="llmsafespace", pattern=r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)*$"
    )
    total_memory_bytes: int | None = Field(
        default=None, gt=0, description="Cap for all sandboxes together; default 3/4 of RAM"
    )
    total_cpu: float | None = Field(default=None, gt=0, description="Default: every CPU")
    total_pids: int = Field(default=32768, gt=0)
    pids_per_sandbox: int = Field(default=256, gt=0)
    nofile_per_sandbox: int = Field(default=1024, gt=0)
    dns_upstream: tuple[str, ...] = Field(
        default=(),
        description="Resolvers the DNS filter of sandboxes with egress hosts asks; "
        "default: the host's (/etc/resolv.conf)",
    )
    allow_degraded: bool = Field(
        default=False,
        description="Start even when cgroups, seccomp or the workspace limit are unavailable",
    )

    def uid_registry(self) -> UidRegistry:
        """The host-wide registry of sandbox uids."""
        return UidRegistry(self.uid_registry_dir, self.uid_base, self.uid_count)

    def cgroups(self) -> Cgroups | None:
        """This host's sandbox cgroups, or None without a usable hierarchy."""
        return Cgroups.detect(self.cgroup_parent)

    def overall_cap(self) -> Limits:
        """What all sandboxes together may use."""
        memory = (
            self.total_memory_bytes
            or os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * 3 // 4
        )
        return Limits(
            cpu=self.total_cpu or float(os.cpu_count() or 1),
            memory_bytes=memory,
            pids=self.total_pids,
        )
