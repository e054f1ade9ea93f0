"""Sandbox drivers and the client of the in-sandbox agent."""

from .agent_client import AgentClient, AgentResult, OutputCallback
from .driver import Driver, Handle, RuntimeSpec
from .errors import AgentUnavailable, DriverError, RuntimeUnavailable, UnknownRuntime
from .local import LocalConfig, LocalDriver

DRIVERS = ("kubernetes", "local")


def create_driver(kind: str, local: LocalConfig) -> Driver:
    """The driver named ``kind``, configured for this host."""
    if kind == "local":
        return LocalDriver(local)
    if kind == "kubernetes":
        raise RuntimeUnavailable("the kubernetes driver is not available yet; use 'local'")
    raise UnknownRuntime(f"unknown driver {kind!r}; available: {', '.join(DRIVERS)}")


__all__ = [
    "AgentClient",
    "AgentResult",
    "AgentUnavailable",
    "Driver",
    "DriverError",
    "Handle",
    "LocalConfig",
    "LocalDriver",
    "OutputCallback",
    "RuntimeSpec",
    "RuntimeUnavailable",
    "UnknownRuntime",
    "create_driver",
]
