"""What the lifespan opens and every request receives as `request.state`."""

from typing import TypedDict

from nats.aio.client import Client as NatsClient

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
