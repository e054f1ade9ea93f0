from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from llmsafespace.servicekit import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_SVC_")

    http_port: int = 8081
    runtime_driver: str = Field(default="local", validation_alias="RUNTIME_DRIVER")
    runtime_dir: Path = Field(default=Path(".llmsafespace/runtime"), validation_alias="RUNTIME_DIR")
    create_timeout: float = Field(default=30.0, gt=0)
    max_workers: int = Field(default=64, ge=1, description="Commands handled concurrently")
