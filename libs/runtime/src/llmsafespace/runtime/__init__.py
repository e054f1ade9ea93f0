"""Sandbox drivers and the client of the in-sandbox agent."""

from .agent_client import AgentClient, AgentResult, OutputCallback
from .agent_transfers import AgentRequestError, Download, Upload
from .driver import Driver, Handle, RuntimeSpec
from .errors import (
    AgentUnavailable,
    DriverError,
    RuntimeUnavailable,
    UnknownRuntime,
    UnsupportedSpec,
)
from .kubernetes import KubernetesConfig, KubernetesDriver, SandboxFailure
from .local import LocalConfig, LocalDriver

DRIVERS = ("kubernetes", "local")


def create_driver(
    kind: str, local: LocalConfig, kubernetes: KubernetesConfig | None = None
) -> Driver:
    """The driver named ``kind``, configured for this host (or cluster)."""
    if kind == "local":
        return LocalDriver(local)
    if kind == "kubernetes":
        return KubernetesDriver(kubernetes or KubernetesConfig())
    raise UnknownRuntime(f"unknown driver {kind!r}; available: {', '.join(DRIVERS)}")


__all__ = [
    "AgentClient",
    "AgentRequestError",
    "AgentResult",
    "AgentUnavailable",
    "Download",
    "Driver",
    "DriverError",
    "Handle",
    "KubernetesConfig",
    "KubernetesDriver",
    "LocalConfig",
    "LocalDriver",
    "OutputCallback",
    "RuntimeSpec",
    "RuntimeUnavailable",
    "SandboxFailure",
    "UnknownRuntime",
    "UnsupportedSpec",
    "Upload",
    "create_driver",
]
