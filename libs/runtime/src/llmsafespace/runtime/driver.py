"""The driver interface every sandbox runtime implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from llmsafespace.contracts.ids import RUNTIME_ID_PATTERN, RuntimeId

LAYER_PATTERN = r"^[a-z0-9][a-z0-9-]{0,80}$"


class RuntimeOwner(StrEnum):
    """The service that created a runtime and destroys it when nothing holds it: a label
    the driver records at create and returns with every handle. Which sandbox or pool
    holds it is that service's own record, never read from the id."""

    SANDBOX_SVC = "sandbox-svc"
    WARMPOOL_SVC = "warmpool-svc"


class NetworkRule(BaseModel):
    """Where a network sandbox may connect: these TCP ports on these host names or
    networks; on any public address when both are empty."""

    model_config = ConfigDict(frozen=True)

    ports: tuple[int, ...]
    hosts: tuple[str, ...] = ()
    cidrs: tuple[str, ...] = ()


class RuntimeSpec(BaseModel):
    """What to create: the runtime's id and owner, its runtime and resources."""

    model_config = ConfigDict(frozen=True)

    runtime_id: RuntimeId = Field(pattern=RUNTIME_ID_PATTERN)
    owner: RuntimeOwner | None = Field(
        default=None, description="Recorded with the runtime; None: nobody reclaims it"
    )
    runtime: str = "python:3.11"
    cpu: float = Field(default=1.0, gt=0)
    memory_bytes: int = Field(default=512 * 2**20, gt=0)
    storage_bytes: int = Field(default=2**30, gt=0)
    env: dict[str, str] = Field(default_factory=dict)
    network_ports: tuple[int, ...] | None = Field(
        default=None, description="TCP ports open to public addresses; None: loopback only"
    )
    network_rules: tuple[NetworkRule, ...] = Field(
        default=(),
        description="Destinations allowed with network_ports; () or only rules without "
        "hosts and cidrs: any public address",
    )
    security_level: str = Field(default="standard", description="'high': gVisor")
    pool: str | None = Field(
        default=None, description="The warm pool it is started for (a label, on Kubernetes)"
    )
    template_layer: str | None = Field(
        default=None,
        pattern=LAYER_PATTERN,
        description="A layer kept by `KeepsTemplates.keep_layer`, bound read-only at "
        "/opt/template (its .packages on the import path, its node_modules on NODE_PATH)",
    )


class Handle(BaseModel):
    """How to reach a running sandbox's agent, and who owns its runtime."""

    model_config = ConfigDict(frozen=True)

    runtime_id: RuntimeId
    owner: RuntimeOwner | None = None
    endpoint: str
    token: str


class RuntimeStats(BaseModel):
    """A sandbox's resource use now, as its runtime measures it; None where it cannot."""

    model_config = ConfigDict(frozen=True)

    cpu_ms: float | None = Field(default=None, description="CPU time used since the start")
    cpu_cores: float | None = Field(
        default=None, description="Recent average CPU use in cores, where measured as a rate"
    )
    memory_bytes: int | None = Field(default=None, description="Memory in use now")
    memory_limit_bytes: int | None = Field(default=None, description="Its memory limit")
    pids: int | None = Field(default=None, description="Processes and threads alive now")


@dataclass(frozen=True)
class SandboxFailure:
    """A runtime that failed, was evicted or disappeared."""

    runtime_id: RuntimeId
    reason: str


class Driver(Protocol):
    """Creates, finds and destroys sandboxes."""

    async def create(self, spec: RuntimeSpec) -> Handle:
        """Start a sandbox; returns once its agent answers."""
        ...

    async def destroy(self, runtime_id: RuntimeId) -> None:
        """Kill a sandbox and remove everything it left; idempotent."""
        ...

    async def list(self) -> list[Handle]:
        """Sandboxes alive now, including ones created by an earlier process."""
        ...

    async def inspect(self, runtime_id: RuntimeId) -> Handle | None:
        """One sandbox, or None if it does not exist."""
        ...

    async def stats(self, runtime_id: RuntimeId) -> RuntimeStats | None:
        """Its live resource use (fields the runtime cannot measure are None), or None
        if the sandbox does not exist."""
        ...

    async def close(self) -> None:
        """Release the driver's resources; sandboxes keep running."""
        ...

    def protections(self) -> dict[str, object]:
        """Which protections its sandboxes get here (for ``/ready`` and status)."""
        ...


@runtime_checkable
class KeepsTemplates(Protocol):
    """A driver that keeps template layers: what a builder sandbox wrote to its
    workspace becomes a layer that sandboxes created with ``template_layer`` find at
    ``/opt/template``. The local driver binds it read-only (never a copy); the Kubernetes
    driver keeps it in a Pod of its own and copies it into each new Pod."""

    async def keep_layer(self, runtime_id: RuntimeId, layer: str) -> None:
        """Copy the sandbox's workspace into the layer store as ``layer``; the sandbox is
        not touched. Raises DriverError if it cannot."""
        ...

    async def drop_layer(self, layer: str) -> None:
        """Remove a layer; idempotent. Only once no sandbox uses it."""
        ...


@runtime_checkable
class ReportsFailures(Protocol):
    """A driver that notices sandboxes failing on their own (Kubernetes and local)."""

    def failures(self) -> AsyncIterator[SandboxFailure]:
        """Each sandbox that failed, was evicted or vanished, once; runs until closed."""
        ...

    async def failure(self, runtime_id: RuntimeId) -> str:
        """Why a sandbox missing from ``list()`` is: the reason ``failures()`` gives (or
        would) for it, so a reconcile that sees it first says the same."""
        ...


@runtime_checkable
class Pauses(Protocol):
    """A driver that freezes a sandbox in place and lets it run again, processes and
    memory kept (the local driver: the cgroup freezer)."""

    async def pause(self, runtime_id: RuntimeId) -> None:
        """Stop every process of the sandbox; returns once they are stopped."""
        ...

    async def resume(self, runtime_id: RuntimeId) -> None:
        """Let the paused sandbox's processes run again."""
        ...

    async def is_paused(self, runtime_id: RuntimeId) -> bool:
        """Whether the sandbox is frozen, or being frozen: a pause reached it and no resume
        since (False for one that does not exist)."""
        ...
