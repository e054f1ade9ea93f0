from pydantic import Field
from pydantic_settings import SettingsConfigDict

from llmsafespace.servicekit import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EXEC_SVC_")

    http_port: int = 8083
    max_workers: int = Field(default=256, ge=1, description="Executions handled concurrently")
    output_limit_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Output kept per streamed execution"
    )
    resolve_ttl: float = Field(default=5.0, ge=0, description="Seconds an endpoint is cached")
