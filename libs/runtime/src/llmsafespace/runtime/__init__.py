"""Sandbox drivers and the client of the in-sandbox agent."""

from llmsafespace.agent.frames import TIMEOUT_EXIT_CODE
from llmsafespace.contracts.ids import RuntimeId

from .agent_client import AgentClient, AgentResult, DisplayCallback, OutputCallback
from .agent_transfers import AgentRequestError, Download, Upload
from .driver import (
    Driver,
    Handle,
    KeepsTemplates,
    NetworkRule,
    Pauses,
    ReportsFailures,
    RuntimeOwner,
    RuntimeSpec,
    RuntimeStats,
    SandboxFailure,
)
from .errors import (
    AgentUnavailable,
    DriverError,
    RuntimeUnavailable,
    UnknownRuntime,
    UnsupportedSpec,
)
from .factory import create_driver, driver_for
from .kubernetes import KubernetesConfig, KubernetesDriver
from .local import LocalConfig, LocalDriver
from .memory import MemoryDriver
from .settings import KubernetesSettings, RuntimeSettings

__all__ = [
    "AgentClient",
    "AgentRequestError",
    "AgentResult",
    "AgentUnavailable",
    "DisplayCallback",
    "Download",
    "Driver",
    "DriverError",
    "Handle",
    "KeepsTemplates",
    "KubernetesConfig",
    "KubernetesDriver",
    "KubernetesSettings",
    "LocalConfig",
    "LocalDriver",
    "MemoryDriver",
    "NetworkRule",
    "OutputCallback",
    "Pauses",
    "ReportsFailures",
    "RuntimeId",
    "RuntimeOwner",
    "RuntimeSettings",
    "RuntimeSpec",
    "RuntimeStats",
    "RuntimeUnavailable",
    "SandboxFailure",
    "TIMEOUT_EXIT_CODE",
    "UnknownRuntime",
    "UnsupportedSpec",
    "Upload",
    "create_driver",
    "driver_for",
]
