from pydantic import Field
from pydantic_settings import SettingsConfigDict

from llmsafespace.servicekit import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUDIT_SVC_")

    http_port: int = 8084
    batch_size: int = Field(default=100, ge=1, le=1000, description="Events fetched per pull")
    linger: float = Field(
        default=0.2,
        ge=0,
        le=5,
        description="Seconds to wait after a short batch, so the next one carries more events"
        " (each batch costs a pull, an insert and a wake-up however few events it holds)",
    )
    ack_wait: float = Field(
        default=30.0, gt=0, description="Seconds before an unacknowledged event is redelivered"
    )
