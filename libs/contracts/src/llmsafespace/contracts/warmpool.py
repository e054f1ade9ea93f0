"""Warm pool claims: sandbox-svc asks warmpool-svc for a ready sandbox."""

from .base import Contract
from .caller import Caller
from .sandbox import Resources, SecurityLevel


class ClaimWarmSandbox(Contract):
    """`cmd.warmpool.claim`: hand one ready sandbox matching these to exactly one caller."""

    caller: Caller
    runtime: str
    security_level: SecurityLevel
    resources: Resources


class ClaimResult(Contract):
    """A miss carries nothing; a hit names the runtime sandbox now owned by the caller."""

    hit: bool
    runtime_id: str | None = None
    endpoint: str | None = None
    token: str | None = None
    pool: str | None = None
