"""Settings of the local (bubblewrap) driver."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

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
    ready_timeout: float = Field(default=10.0, gt=0)

    def uid_registry(self) -> UidRegistry:
        """The host-wide registry of sandbox uids."""
        return UidRegistry(self.uid_registry_dir, self.uid_base, self.uid_count)
