"""Settings of the Kubernetes driver."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


class KubernetesConfig(BaseModel):
    """Where sandboxes run, which image each runtime uses, and how the API is reached.

    The API is reached at ``api_url`` when set (with an optional bearer ``token`` or
    ``token_file``, and ``ca_file``), else through ``kubeconfig`` when set, else in-cluster
    (the Pod's service account).
    """

    model_config = ConfigDict(frozen=True)

    namespace: str = Field(default="llmsafespace-sandboxes", pattern=DNS_LABEL)
    images: dict[str, str] = Field(
        default_factory=lambda: {"python:3.11": "ghcr.io/llmsafespace/runtime-python:3.11"},
        description="Runtime name → container image (from the runtime catalog)",
    )
    runtime_classes: dict[str, str] = Field(
        default_factory=lambda: {"high": "gvisor"},
        description="Security level → RuntimeClass; a level not listed uses the cluster default",
    )
    agent_port: int = Field(default=7070, ge=1, le=65535)
    exec_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "exec-svc"},
        description="Pods allowed to reach the agent port",
    )
    pool_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "warmpool-svc"},
        description="Pods also allowed to reach it (warm pools preload and customise sandboxes)",
    )
    sandbox_pod_labels: dict[str, str] = Field(
        default_factory=lambda: {"app.kubernetes.io/name": "sandbox-svc"},
        description="Pods also allowed to reach it (sandbox-svc waits for the agent, captures"
        " and restores snapshots, copies template layers)",
    )
    exec_namespace: str | None = Field(
        default=None, description="Namespace of exec-svc; None means the sandbox namespace"
    )
    api_url: str | None = None
    token: SecretStr | None = Field(default=None, description="Bearer token for api_url")
    token_file: Path | None = Field(default=None, description="File holding that token")
    ca_file: Path | None = None
    kubeconfig: Path | None = None
    image_pull_policy: str = Field(default="IfNotPresent", pattern="^(Always|IfNotPresent|Never)$")
    tmp_bytes: int = Field(default=64 * 2**20, gt=0, description="Size limit of /tmp")
    ready_timeout: float = Field(default=120.0, gt=0, description="Seconds for Running + ping")
    poll_interval: float = Field(default=0.5, gt=0, description="Pod status polling while creating")
    watch_interval: float = Field(default=2.0, gt=0, description="Failure polling period")
    request_timeout: float = Field(default=10.0, gt=0, description="Per API call, seconds")
