from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from llmsafespace.servicekit import ServiceSettings

from .ratelimit import RateLimits


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    http_port: int = 8080
    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"),
        validation_alias="REDIS_URL",
        description="Rate limits and revoked credentials (the only service that uses Redis)",
    )
    bootstrap_admin_key: SecretStr | None = Field(
        default=None,
        description="An API key for the `admin` user, created on start if missing",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to open WebSockets ('*' for any); "
        "clients that send no Origin (SDKs, CLIs) are always allowed",
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Signs access tokens; every replica needs the same one",
    )
    token_seconds: int = Field(default=900, ge=60, le=86400)
    rate_limits: RateLimits = Field(
        default_factory=RateLimits,
        description="Requests per user by class (create_sandbox, execute_code, default): "
        '{"enabled": true, "<class>": {"requests": N, "window": seconds}}, or a plain N '
        "per minute; admins are exempt",
    )
    max_api_keys: int = Field(
        default=20, ge=1, description="Live API keys a user may hold (revoked ones do not count)"
    )
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    create_timeout: float = Field(default=60.0, gt=0, description="Seconds for a sandbox create")
    workspace_timeout: float = Field(
        default=1800.0,
        gt=0,
        description="Seconds for a call that moves a whole workspace: pause, resume, snapshot"
        " create and a create from a snapshot (on Kubernetes pause and resume stream the"
        " workspace too); a GiB takes about a minute",
    )
    execute_grace: float = Field(
        default=15.0, gt=0, description="Seconds added to an execution's own timeout"
    )
    stream_grace: float = Field(
        default=15.0,
        gt=0,
        description="Seconds past a streamed execution's own timeout before a follower "
        "presumes it lost and ends it with an execution_failed error",
    )
