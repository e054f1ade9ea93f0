"""What the lifespan opens and every request receives as `request.state`."""

from typing import TypedDict, cast

from nats.aio.client import Client as NatsClient
from starlette.requests import HTTPConnection

from llmsafespace.servicekit import Bus

from .accounts import Accounts
from .ratelimit import RateLimiter
from .settings import Settings


class State(TypedDict):
    bus: Bus
    nats: NatsClient
    accounts: Accounts
    limiter: RateLimiter
    settings: Settings


def state_of(connection: HTTPConnection) -> State:
    """The lifespan's resources as this request sees them, typed (Starlette keeps them
    in a `State` that answers `[key]` like the mapping the lifespan yielded)."""
    return cast(State, connection.state)
