from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from llmsafespace.servicekit import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EXEC_SVC_")

    http_port: int = 8083
    max_workers: int = Field(default=256, ge=1, description="Executions handled concurrently")
    max_running_per_user: int = Field(
        default=32,
        ge=1,
        description="Of each command's `max_workers`, how many one user may hold at once"
        " (a synchronous execution for as long as it runs); past it, 429 `rate_limited`."
        " Admins are exempt",
    )
    output_limit_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Output kept per streamed execution"
    )
    max_file_bytes: int = Field(
        default=100 * 2**20, gt=0, description="Largest file one upload may write"
    )
    transfer_idle: float = Field(
        default=60.0, gt=0, description="Seconds a file transfer may wait for its next chunk"
    )
    package_index_url: SecretStr | None = Field(
        default=None,
        validation_alias="PACKAGE_INDEX_URL",
        description="A package index (PEP 503) exec-svc fetches wheels from for sandboxes",
    )
    npm_registry_url: SecretStr | None = Field(
        default=None,
        validation_alias="NPM_REGISTRY_URL",
        description="An npm registry exec-svc fetches packages from for sandboxes",
    )
    lost_after: float = Field(
        default=30.0,
        ge=5,
        description="Seconds an exec-svc instance may go unheard before another ends the"
        " executions it was running as lost (exec_svc/inflight.py)",
    )
    resolve_ttl: float = Field(default=5.0, ge=0, description="Seconds an endpoint is cached")
    resolve_timeout: float = Field(
        default=1800.0,
        gt=0,
        description="Seconds to wait for sandbox-svc to resolve a sandbox: a call on a paused"
        " `autoResume` sandbox resumes it first, which on Kubernetes restores its workspace",
    )
    terminal_grace: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a terminal lives on with no socket attached (to re-attach)",
    )
    terminal_scrollback_chars: int = Field(
        default=64 * 1024, gt=0, description="Output a terminal keeps for a re-attach"
    )
