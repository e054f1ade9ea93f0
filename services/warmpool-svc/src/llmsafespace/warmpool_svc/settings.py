from pydantic_settings import SettingsConfigDict

from llmsafespace.servicekit import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WARMPOOL_SVC_")

    http_port: int = 8082
