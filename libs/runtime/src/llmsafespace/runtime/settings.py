"""Which driver a service runs its sandboxes with, read from the environment.

``RUNTIME_DRIVER`` (``local`` or ``kubernetes``) and ``RUNTIME_DIR`` choose the driver;
``KUBERNETES_*`` configure the Kubernetes one, one variable per field of
:class:`KubernetesConfig` (``KUBERNETES_NAMESPACE``, ``KUBERNETES_API_URL``,
``KUBERNETES_IMAGES`` as JSON, …). The Helm chart sets the same names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .kubernetes import KubernetesConfig

DriverName = Literal["local", "kubernetes"]


class KubernetesSettings(KubernetesConfig, BaseSettings):
    """A :class:`KubernetesConfig` read from ``KUBERNETES_*`` (maps and lists as JSON)."""

    model_config = SettingsConfigDict(env_prefix="KUBERNETES_", frozen=True, extra="ignore")


class RuntimeSettings(BaseSettings):
    """The runtime part of a service's settings (no service prefix: every service that
    runs sandboxes reads the same variables)."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    driver: DriverName = Field(default="local", validation_alias="RUNTIME_DRIVER")
    dir: Path = Field(
        default=Path(".llmsafespace.shared/runtime"),  # beside the 0700 state dir
        validation_alias="RUNTIME_DIR",
        description="The local driver's state directory",
    )
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
