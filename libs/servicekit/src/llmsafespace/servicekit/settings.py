"""The settings every service shares. Each service subclasses with its own env prefix."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Connection URLs have no prefix (every service reads the same `NATS_URL`);
    the rest are read with the subclass's prefix, e.g. `SANDBOX_SVC_HTTP_PORT`."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    nats_url: str = Field(default="nats://127.0.0.1:4222", validation_alias="NATS_URL")
    database_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/llmsafespace",
        validation_alias="DATABASE_URL",
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", validation_alias="REDIS_URL")
    log_format: Literal["json", "console"] = Field(default="json", validation_alias="LOG_FORMAT")
    log_level: str = Field(default="info", validation_alias="LOG_LEVEL")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    request_timeout: float = Field(default=10.0, gt=0, description="Seconds for a bus request")
