"""Per-key rate limits in Redis (fixed one-minute windows), shared by every replica.

If Redis is unreachable the request is let through (fail open), logged and counted:
a cache outage must not take the API down.
"""

import time
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter

WINDOW_SECONDS = 60
log = structlog.get_logger()
LIMITER_ERRORS = Counter("rate_limit_errors_total", "Redis failures while rate limiting")
REJECTED = Counter("rate_limited_total", "Requests refused by a rate limit", ["limit_class"])


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset: int  # epoch seconds when the window ends

    @property
    def exceeded(self) -> bool:
        return self.remaining < 0

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    def __init__(self, cache: aioredis.Redis, limits: dict[str, int]) -> None:
        self._cache = cache
        self._limits = limits

    async def hit(
        self, key_id: str, limit_class: str, *, confirm: str | None = None
    ) -> tuple[Quota, bool]:
        """Count one request of `limit_class` for `key_id`; in the same round trip, check
        that the Redis key `confirm` exists. Returns the quota and that check's answer
        (False when there was nothing to confirm or Redis could not be asked)."""
        limit = self._limits.get(limit_class, self._limits["default"])
        window = int(time.time()) // WINDOW_SECONDS
        reset = (window + 1) * WINDOW_SECONDS
        name = f"llmsafespace:rate:{key_id}:{limit_class}:{window}"
        try:
            async with self._cache.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, WINDOW_SECONDS + 5)
                if confirm is not None:
                    pipe.exists(confirm)
                count, _, *confirmed = await pipe.execute()
        except aioredis.RedisError as exc:
            LIMITER_ERRORS.inc()
            log.error("rate_limiter_unavailable", error=str(exc))
            return Quota(limit=limit, remaining=limit, reset=reset), False
        quota = Quota(limit=limit, remaining=limit - int(count), reset=reset)
        if quota.exceeded:
            REJECTED.labels(limit_class=limit_class).inc()
        return quota, bool(confirmed and confirmed[0])


def limit_class(method: str, path: str) -> str:
    """Which limit a request counts against."""
    if method == "POST" and path.endswith("/sandboxes"):
        return "create_sandbox"
    if method == "POST" and path.endswith("/execute"):
        return "execute_code"
    return "default"
