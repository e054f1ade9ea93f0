"""The headers a rate-limited response carries: `X-RateLimit-*` always, `Retry-After`
(whole seconds to wait) once the limit is exceeded."""

import time

from llmsafespace.gateway.ratelimit import Quota


def test_a_request_within_the_limit_gets_no_retry_after() -> None:
    headers = Quota(limit=5, remaining=0, reset=int(time.time()) + 60).headers()
    assert headers["X-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in headers


def test_an_exceeded_limit_says_how_many_seconds_to_wait() -> None:
    reset = int(time.time()) + 60
    headers = Quota(limit=5, remaining=-1, reset=reset).headers()
    assert 1 <= int(headers["Retry-After"]) <= 60, "seconds to wait, not the reset's epoch"
    assert headers["X-RateLimit-Reset"] == str(reset)


def test_retry_after_is_at_least_one_second() -> None:
    assert Quota(limit=5, remaining=-1, reset=1000).headers()["Retry-After"] == "1"
