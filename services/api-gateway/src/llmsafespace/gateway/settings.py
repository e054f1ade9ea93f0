from pydantic import Field
from pydantic_settings import SettingsConfigDict

from llmsafespace.servicekit import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    http_port: int = 8080
    bootstrap_admin_key: str | None = Field(
        default=None,
        description="An API key for the `admin` user, created on start if missing",
    )
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    create_timeout: float = Field(default=60.0, gt=0, description="Seconds for a sandbox create")
    execute_grace: float = Field(
        default=15.0, gt=0, description="Seconds added to an execution's own timeout"
    )
