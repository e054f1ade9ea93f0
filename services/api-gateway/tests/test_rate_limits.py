"""`GATEWAY_RATE_LIMITS`: the original design's shape, the plain-number shape, a switch."""

import pytest
from pydantic import ValidationError

from llmsafespace.gateway.ratelimit import RateLimit, RateLimits
from llmsafespace.gateway.settings import Settings


def test_the_design_shape_gives_each_class_its_own_window() -> None:
    settings = Settings(
        rate_limits={"execute_code": {"requests": 100, "window": 10}, "enabled": True}
    )
    limits = settings.rate_limits
    assert limits.enabled
    assert limits.of("execute_code") == RateLimit(requests=100, window=10)
    assert limits.of("create_sandbox") == RateLimit(requests=120, window=60), "default kept"
    assert limits.of("anything_else") == limits.of("default")


def test_a_plain_number_is_requests_per_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_RATE_LIMITS", '{"create_sandbox": 2, "default": 6}')
    limits = Settings().rate_limits
    assert limits.of("create_sandbox") == RateLimit(requests=2, window=60)
    assert limits.of("default") == RateLimit(requests=6, window=60)
    assert limits.of("execute_code") == RateLimit(requests=3000, window=60)


def test_limits_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_RATE_LIMITS", '{"enabled": false}')
    assert Settings().rate_limits.enabled is False


@pytest.mark.parametrize(
    "value",
    [{"default": 0}, {"default": True}, {"default": {"requests": 5, "window": 0}}, {"x": "9"}],
)
def test_nonsense_limits_are_refused(value: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RateLimits.model_validate(value)
