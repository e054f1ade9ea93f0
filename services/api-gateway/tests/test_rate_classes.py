"""Which limit a request counts against, and who is limited at all."""

import pytest
import redis.asyncio as aioredis

from llmsafespace.contracts import Caller, Role
from llmsafespace.gateway.confirmations import Confirmations
from llmsafespace.gateway.ratelimit import RateLimiter, RateLimits, limit_class


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/api/v1/sandboxes", "create_sandbox"),
        ("POST", "/api/v1/sandboxes/sb-aaaaaaaaaaaa/execute", "execute_code"),
        ("GET", "/api/v1/sandboxes", "default"),
        ("GET", "/api/v1/sandboxes/sb-aaaaaaaaaaaa/execute", "default"),
        ("DELETE", "/api/v1/sandboxes/sb-aaaaaaaaaaaa", "default"),
        ("POST", "/api/v1/warmpools", "default"),
    ],
)
def test_creates_and_executions_have_classes_of_their_own(
    method: str, path: str, expected: str
) -> None:
    assert limit_class(method, path) == expected


def test_a_class_without_a_limit_of_its_own_counts_against_the_default() -> None:
    limits = RateLimits.model_validate({"execute_code": 5, "default": 7})
    assert limits.of("execute_code").requests == 5
    assert limits.of("mystery").requests == 7


@pytest.mark.parametrize(
    ("enabled", "role", "limited"),
    [(True, Role.USER, True), (True, Role.ADMIN, False), (False, Role.USER, False)],
)
def test_users_are_limited_unless_limits_are_off_and_admins_never(
    enabled: bool, role: Role, limited: bool
) -> None:
    limiter = RateLimiter(aioredis.Redis(), RateLimits(enabled=enabled), Confirmations("", ""))
    assert limiter.applies_to(Caller(user_id="usr-aaaaaaaaaaaa", role=role)) is limited
