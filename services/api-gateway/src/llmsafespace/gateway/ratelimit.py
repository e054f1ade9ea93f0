"""Per-user rate limits in Redis (fixed windows per class), shared by every replica.

Limits count per user, not per key (more keys buy no more requests); admins are exempt,
as they are from quotas. If Redis is unreachable the request is let through (fail open),
logged and counted: a cache outage must not take the API down.
"""

import asyncio
import math
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import structlog
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmsafespace.contracts import Caller, ErrorCode, Role, ServiceError

from .confirmations import Confirmations

DEFAULT_WINDOW_SECONDS = 60
log = structlog.get_logger()
LIMITER_ERRORS = Counter("rate_limit_errors_total", "Redis failures while rate limiting")
REJECTED = Counter("rate_limited_total", "Requests refused by a rate limit", ["limit_class"])


class RateLimit(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    requests: int = Field(ge=1, strict=True, description="Requests allowed per window")
    window: int = Field(
        default=DEFAULT_WINDOW_SECONDS, ge=1, le=86400, strict=True, description="Seconds"
    )


_DEFAULTS = {
    "create_sandbox": RateLimit(requests=120),
    "execute_code": RateLimit(requests=3000),
    "default": RateLimit(requests=6000),
}


class RateLimits(BaseModel):
    """`GATEWAY_RATE_LIMITS`, e.g. `{"enabled": true, "execute_code": {"requests": 100,
    "window": 10}}`; a plain number is requests per 60 s. Classes not named keep their
    defaults (create_sandbox 120, execute_code 3000, default 6000 per minute)."""

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    classes: dict[str, RateLimit] = Field(default_factory=lambda: dict(_DEFAULTS))

    @model_validator(mode="before")
    @classmethod
    def _from_flat(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "classes" in data:
            return data
        classes = {
            name: {"requests": value} if type(value) is int else value
            for name, value in data.items()
            if name != "enabled"
        }
        return {"enabled": data.get("enabled", True), "classes": {**_DEFAULTS, **classes}}

    def of(self, limit_class: str) -> RateLimit:
        return self.classes.get(limit_class) or self.classes["default"]


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset: int  # epoch seconds when the window ends

    @property
    def exceeded(self) -> bool:
        return self.remaining < 0

    @property
    def retry_after(self) -> int:
        """Whole seconds until the window ends, at least 1 (`Retry-After`)."""
        return max(1, math.ceil(self.reset - time.time()))

    def refusal(self) -> ServiceError:
        """The `rate_limited` error of an exceeded limit, saying when to try again."""
        return ServiceError(
            ErrorCode.RATE_LIMITED,
            "rate limit exceeded",
            {"limit": self.limit, "resetAt": self.reset, "retryAfter": self.retry_after},
        )

    def headers(self) -> dict[str, str]:
        """`X-RateLimit-*`, and `Retry-After` once the limit is exceeded."""
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(self.reset),
        }
        if self.exceeded:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimiter:
    def __init__(
        self, cache: aioredis.Redis, limits: RateLimits, confirmations: Confirmations
    ) -> None:
        self._cache = cache
        self._limits = limits
        self._confirmations = confirmations
        self._asking: dict[str, tuple[int, asyncio.Future[bool]]] = {}  # see `_confirm`

    def applies_to(self, caller: Caller) -> bool:
        return self._limits.enabled and caller.role is not Role.ADMIN

    async def hit(
        self, caller: Caller, limit_class: str | None, *, confirm: str | None = None
    ) -> tuple[Quota | None, bool]:
        """Count one request of `limit_class` (None: count nothing) for the caller; in
        the same round trip, check that the Redis key `confirm` exists. Returns the quota
        (None when no limit applies: limits off, or an admin) and that check's answer
        (False when there was nothing to confirm or Redis could not be asked). With
        nothing to count, a confirmation this replica trusts needs no Redis at all
        (see `confirmations`)."""
        counted = limit_class is not None and self.applies_to(caller)
        if not counted:
            return None, confirm is not None and await self._confirm(confirm)
        limit = self._limits.of(limit_class or "default")
        window = int(time.time()) // limit.window
        reset = (window + 1) * limit.window
        name = f"llmsafespace:rate:{caller.user_id}:{limit_class}:{limit.window}:{window}"
        try:
            async with self._cache.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, limit.window + 5)
                if confirm is not None:
                    pipe.exists(confirm)
                replies = await pipe.execute()
        except aioredis.RedisError as exc:
            LIMITER_ERRORS.inc()
            log.error("rate_limiter_unavailable", error=str(exc))
            return Quota(limit=limit.requests, remaining=limit.requests, reset=reset), False
        confirmed = confirm is not None and bool(replies[-1])
        quota = Quota(limit=limit.requests, remaining=limit.requests - int(replies[0]), reset=reset)
        if quota.exceeded:
            REJECTED.labels(limit_class=limit_class).inc()
        return quota, confirmed

    async def _confirm(self, entry: str) -> bool:
        """Whether `entry` exists: trusted, or asked of Redis. One question per entry is
        in flight at a time, answering everyone who needs it meanwhile (when a trust
        lapses, a hundred sockets of one agent need it at once: each asking filled the
        Redis pool), unless something was invalidated since it was asked."""
        if self._confirmations.trusted(entry):
            return True
        ticket = self._confirmations.ticket()
        asking = self._asking.get(entry)
        if asking is None or asking[0] != ticket:
            question = asyncio.ensure_future(self._exists(entry, ticket))
            asking = self._asking[entry] = (ticket, question)
            question.add_done_callback(lambda _: self._asked(entry, question))
        return await asyncio.shield(asking[1])  # a caller giving up stops it for none

    def _asked(self, entry: str, question: "asyncio.Future[bool]") -> None:
        if (asking := self._asking.get(entry)) is not None and asking[1] is question:
            del self._asking[entry]

    async def _exists(self, entry: str, ticket: int) -> bool:
        try:
            exists = bool(await self._cache.exists(entry))
        except aioredis.RedisError as exc:
            LIMITER_ERRORS.inc()
            log.error("rate_limiter_unavailable", error=str(exc))
            return False
        if exists:
            self._confirmations.confirmed(entry, ticket)
        return exists


def limit_class(method: str, path: str) -> str:
    """Which limit a request counts against."""
    if method == "POST" and path.endswith("/sandboxes"):
        return "create_sandbox"
    if method == "POST" and path.endswith("/execute"):
        return "execute_code"
    return "default"
