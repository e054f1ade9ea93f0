"""Each user's share of a command's workers on this instance.

A command is answered by at most `max_workers` handlers at once per instance, and a
synchronous execution holds its worker for as long as it runs (up to an hour): one user's
flood of them took every worker, and everyone else's executions waited behind it. So no
user holds more than `limit` of one command's workers: past it, a request is refused with
`429 rate_limited` at once, before it waits for a worker (`servicekit.commands.Admit`),
so a refused flood queues ahead of no one. Admins are exempt, as from rate limits and
quotas (and the benchmarks drive the service as one).
"""

from collections import Counter
from collections.abc import Callable
from typing import Protocol

from llmsafespace.contracts import Caller, ErrorCode, Role, ServiceError

RETRY_AFTER = 1  # seconds: a worker is freed as soon as one of the user's requests ends


class FromCaller(Protocol):
    @property
    def caller(self) -> Caller: ...


class Shares:
    """At most `limit` requests of one user at once; `what` names them in the refusal
    ("executions run", "downloads open")."""

    def __init__(self, limit: int, what: str) -> None:
        self._limit = limit
        self._what = what
        self._held: Counter[str] = Counter()

    def held(self, user_id: str) -> int:
        return self._held[user_id]

    def admit(self, command: FromCaller) -> Callable[[], None]:
        """Count the request in, or refuse it; the result counts it out."""
        caller = command.caller
        if caller.role is Role.ADMIN:
            return _nothing
        user = caller.user_id
        if self._held[user] >= self._limit:
            raise ServiceError(
                ErrorCode.RATE_LIMITED,
                f"too many of your {self._what} at once on this exec-svc instance"
                f" (at most {self._limit}): retry when one has ended",
                {"retryAfter": RETRY_AFTER, "limit": self._limit},
            )
        self._held[user] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._held[user] -= 1
                if not self._held[user]:
                    del self._held[user]

        return release


def _nothing() -> None:
    pass
