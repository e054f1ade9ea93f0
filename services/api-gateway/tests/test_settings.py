"""The gateway's settings: the only service that reads `REDIS_URL`."""

import json

from llmsafespace.gateway.settings import Settings
from llmsafespace.servicekit import ServiceSettings

REDIS_URL = "redis://:valkey-pass-1@redis:6379/0"


def test_the_gateway_reads_redis_url_and_never_shows_its_password() -> None:
    settings = Settings(REDIS_URL=REDIS_URL)
    shown = repr(settings) + str(settings) + json.dumps(settings.model_dump(mode="json"))
    assert "valkey-pass-1" not in shown
    assert settings.redis_url.get_secret_value() == REDIS_URL


def test_services_that_never_use_redis_have_no_redis_setting() -> None:
    assert "redis_url" not in ServiceSettings.model_fields
