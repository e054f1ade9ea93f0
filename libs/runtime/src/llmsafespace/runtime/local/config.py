"""Settings of the local (bubblewrap) driver."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class LocalConfig(BaseModel):
    """Where sandbox state lives, which host uids sandboxes get, and which interpreters exist."""

    model_config = ConfigDict(frozen=True)

    runtime_dir: Path
    uid_base: int = Field(default=200000, ge=1000)
    uid_count: int = Field(default=4096, ge=1)
    interpreters: dict[str, str] = Field(
        default_factory=lambda: {"python:3.11": "/usr/bin/python3.11"}
    )
    ready_timeout: float = Field(default=10.0, gt=0)
