"""The settings every service shares. Each service subclasses with its own env prefix.

Anything that can carry a credential (connection URLs, keys, secrets) is a `SecretStr`:
its repr is redacted, so a logged `Settings` or traceback cannot leak it; read it with
`.get_secret_value()` where it is used.
"""

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from llmsafespace.contracts import quantity_bytes
from llmsafespace.contracts.sandbox import QUANTITY_PATTERN


class ServiceSettings(BaseSettings):
    """Connection URLs have no prefix (`NATS_URL`, `DATABASE_URL`, `REDIS_URL`); the
    rest are read with the subclass's prefix, e.g. `SANDBOX_SVC_HTTP_PORT`. Each service's
    `NATS_URL` carries its own NATS user (named for the service), allowed only the
    subjects `contracts.bus_permissions` grants it."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    nats_url: SecretStr = Field(
        default=SecretStr("nats://127.0.0.1:4222"), validation_alias="NATS_URL"
    )
    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/llmsafespace"),
        validation_alias="DATABASE_URL",
    )
    log_format: Literal["json", "console"] = Field(default="json", validation_alias="LOG_FORMAT")
    log_level: str = Field(default="info", validation_alias="LOG_LEVEL")
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=0, le=65535)
    request_timeout: float = Field(default=10.0, gt=0, description="Seconds for a bus request")
    output_stream_max_bytes: str = Field(
        default="1Gi",
        pattern=QUANTITY_PATTERN,
        validation_alias="OUTPUT_STREAM_MAX_BYTES",
        description="The most the JetStream stream of streamed output (LLMSAFESPACE_OUTPUT)"
        " stores, all executions together (a quantity, e.g. `1Gi`); past it the oldest"
        " messages go. No service prefix: every service creates and updates the stream at"
        " start, so all must be given the same value.",
    )

    def output_stream_bytes(self) -> int:
        return quantity_bytes(self.output_stream_max_bytes)
