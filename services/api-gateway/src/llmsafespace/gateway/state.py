"""What the lifespan opens and every request receives as `request.state`."""

from typing import TypedDict

from llmsafespace.servicekit import Bus

from .accounts import Accounts
from .settings import Settings


class State(TypedDict):
    bus: Bus
    accounts: Accounts
    settings: Settings
