"""What the lifespan opens and every request receives as `request.state`."""

from typing import TypedDict

from nats.js import JetStreamContext

from llmsafespace.servicekit import Bus

from .accounts import Accounts
from .ratelimit import RateLimiter
from .settings import Settings


class State(TypedDict):
    bus: Bus
    jetstream: JetStreamContext
    accounts: Accounts
    limiter: RateLimiter
    settings: Settings
