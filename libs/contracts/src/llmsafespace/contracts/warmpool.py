"""Warm pools: definitions clients manage, and the claim sandbox-svc makes on each create."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from .base import Contract, GivenRequest, Request
from .caller import Caller
from .events import WarmPoolEventName
from .ids import RuntimeId, SandboxId, SnapshotId, UserId
from .sandbox import Resources, SecurityLevel

POOL_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
PoolName = Annotated[str, StringConstraints(pattern=POOL_NAME_PATTERN, max_length=63)]
PackageName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-\[\],<>=!~ ]{0,127}$")
]
# No NUL: PostgreSQL text cannot hold it.
Script = Annotated[str, StringConstraints(min_length=1, max_length=65536, pattern=r"^[^\x00]*$")]
MAX_POOL_SIZE = 200
DEFAULT_MAX_SIZE = 10  # a pool's `maxSize` when it gives none (nor a larger `minSize`)
# Names a pool cannot take: `/warmpools/<name>` is another route for them.
RESERVED_POOL_NAMES = frozenset({"status"})


class AutoScaling(Request):
    """Grow toward `maxSize` while claims keep utilization above target; shrink back to
    `minSize` once no claim came for `scaleDownDelay` seconds.

    The pool's desired size is the claims of the last `scaleDownDelay` seconds divided by
    `targetUtilization` (so 4 claims at 0.5 want 8 ready), within `minSize`..`maxSize`; it
    does not shrink while claims keep coming. With `scaleDownDelay` 0 it never grows.
    """

    enabled: bool = Field(default=False, strict=True)
    target_utilization: float = Field(
        default=0.8,
        gt=0,
        le=1,
        strict=True,
        description="Share of the pool recent claims should use",
    )
    scale_down_delay: int = Field(
        default=300,
        ge=0,
        le=86400,
        strict=True,
        description="Seconds without a claim before the pool shrinks back to minSize; also"
        " the window claims are counted in",
    )


class WarmPoolSpec(GivenRequest):
    """`POST /warmpools` body: what a pool keeps ready."""

    GIVEN: ClassVar[tuple[str, ...]] = ("runtime",)  # a template's or snapshot's if omitted

    name: PoolName
    runtime: str = Field(default="python:3.11", min_length=1, max_length=64)
    min_size: int = Field(default=1, ge=0, le=MAX_POOL_SIZE, strict=True)
    max_size: int = Field(default=DEFAULT_MAX_SIZE, ge=1, le=MAX_POOL_SIZE, strict=True)
    security_level: SecurityLevel = SecurityLevel.STANDARD
    ttl: int = Field(
        default=3600,
        ge=0,
        le=7 * 86400,
        strict=True,
        description="Seconds a ready sandbox lives; 0 = forever",
    )
    resources: Resources = Field(default_factory=Resources)
    preload_packages: list[PackageName] = Field(
        default_factory=list,
        max_length=32,
        description="Refused (400) when not empty: warm sandboxes have no network; build a "
        "template with the packages and give `template`",
    )
    preload_scripts: list[Script] = Field(default_factory=list, max_length=16)
    auto_scaling: AutoScaling = Field(default_factory=AutoScaling)
    template: PoolName | None = Field(
        default=None,
        description="A ready template (POST /templates): the pool's sandboxes have its "
        "packages, files and env, and its runtime; creates naming it claim from the pool",
    )
    snapshot: SnapshotId | None = Field(
        default=None,
        description="A snapshot (POST /sandboxes/{id}/snapshots) every sandbox of the pool"
        " starts from: its workspace, runtime and template; creates from it claim from the"
        " pool (its env is added at the claim)",
    )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_POOL_NAMES:
            raise ValueError(f"{name!r} is reserved: /warmpools/{name} is another route")
        return name

    @model_validator(mode="before")
    @classmethod
    def _max_size_follows_min_size(cls, data: Any) -> Any:
        """Without `maxSize`, a `minSize` above its default is the maximum too (a pool of
        at least 11 says nothing against 11; "minSize (11) exceeds maxSize (10)" would
        blame a field the client never sent)."""
        if isinstance(data, dict) and not {"maxSize", "max_size"} & data.keys():
            min_size = data.get("minSize", data.get("min_size"))
            if isinstance(min_size, int) and min_size > DEFAULT_MAX_SIZE:
                return {**data, "maxSize": min_size}
        return data

    @model_validator(mode="after")
    def _sizes(self) -> "WarmPoolSpec":
        if self.min_size > self.max_size:
            raise ValueError(f"minSize ({self.min_size}) exceeds maxSize ({self.max_size})")
        return self


class WarmPoolUpdate(Request):
    """`PATCH /warmpools/{name}` body: the fields to change (runtime, security level and
    resources are fixed for a pool's life)."""

    min_size: int | None = Field(default=None, ge=0, le=MAX_POOL_SIZE, strict=True)
    max_size: int | None = Field(default=None, ge=1, le=MAX_POOL_SIZE, strict=True)
    ttl: int | None = Field(default=None, ge=0, le=7 * 86400, strict=True)
    preload_packages: list[PackageName] | None = Field(default=None, max_length=32)
    preload_scripts: list[Script] | None = Field(default=None, max_length=16)
    auto_scaling: AutoScaling | None = None

    def apply(self, spec: WarmPoolSpec) -> WarmPoolSpec:
        """The spec with these changes, validated as a whole (so minSize ≤ maxSize holds)."""
        merged = spec.model_dump() | self.model_dump(exclude_unset=True, exclude_none=True)
        return WarmPoolSpec.model_validate(merged)


class PoolCondition(Contract):
    type: Literal["Ready", "Replenishing", "Failing"]
    status: Literal["True", "False"]
    reason: str = ""
    message: str = ""


class WarmPoolStatus(Contract):
    available_pods: int = 0
    assigned_pods: int = 0
    pending_pods: int = 0
    desired_pods: int = 0
    last_scale_time: datetime | None = None
    conditions: list[PoolCondition] = Field(default_factory=list)


class WarmPool(Contract):
    """A pool as its owner sees it."""

    name: PoolName
    owner_id: str
    spec: WarmPoolSpec
    status: WarmPoolStatus
    created_at: datetime
    updated_at: datetime


class WarmPoolList(Contract):
    pools: list[WarmPool]


class CreateWarmPool(Contract):
    """`cmd.warmpool.create`."""

    caller: Caller
    spec: WarmPoolSpec


class UpdateWarmPool(Contract):
    """`cmd.warmpool.update`."""

    caller: Caller
    name: PoolName
    update: WarmPoolUpdate


class WarmPoolRef(Contract):
    """`cmd.warmpool.get|delete`: one pool, on behalf of a caller."""

    caller: Caller
    name: PoolName


class ListWarmPools(Contract):
    """`cmd.warmpool.list`: the caller's pools (every pool for admins)."""

    caller: Caller


class WarmSandboxState(StrEnum):
    PENDING = "pending"
    READY = "ready"
    ASSIGNED = "assigned"


class ClaimWarmSandbox(Contract):
    """`cmd.warmpool.claim`: hand one ready sandbox matching these to exactly one sandbox.

    The warm-claim handover, the one protocol between sandbox-svc and warmpool-svc:

    1. sandbox-svc inserts the sandbox's row, `creating` and marked as asking for a warm
       runtime, before it asks (the quota is admitted there, before any claim).
    2. It sends this claim naming the sandbox. warmpool-svc, in one transaction, records
       the claim in its ledger and flips one ready runtime to `assigned` to that sandbox.
       A second claim for the sandbox answers the same runtime; a claim for a sandbox
       whose claim was released is a miss.
    3. On a hit, sandbox-svc moves its row to `running` on that runtime (only from
       `creating`), and the claim is settled: the runtime is the sandbox's, ended with it.
    4. Otherwise (no reply, an error, or the row ended meanwhile), sandbox-svc sends
       `cmd.warmpool.release` (`ReleaseWarmClaim`) for the sandbox: warmpool-svc marks the
       claim released and destroys the runtime assigned to it, if any. Until that is
       acknowledged the row stays marked as asking, and sandbox-svc's reaper sends it
       again (after the row's creator died, it fails the row first).

    Only sandbox-svc asks; warmpool-svc never asks sandbox-svc, and never destroys an
    assigned runtime except on a release. Nothing in it waits for a time to pass.
    """

    caller: Caller
    runtime: str
    security_level: SecurityLevel
    resources: Resources
    sandbox_id: SandboxId = Field(description="The sandbox the warm runtime is claimed for")
    env: dict[str, str] = Field(
        default_factory=dict, description="Added to the warm sandbox's environment at claim"
    )
    template: str | None = Field(
        default=None,
        description="Only a sandbox of a pool of this template matches (none: no template)",
    )
    snapshot: SnapshotId | None = Field(
        default=None,
        description="Only a sandbox of a pool of this snapshot matches (none: no snapshot)",
    )


class ClaimResult(Contract):
    """A miss carries nothing; a hit names the runtime now assigned to the sandbox."""

    hit: bool
    runtime_id: RuntimeId | None = None
    endpoint: str | None = None
    token: str | None = None
    pool: str | None = None


class ReleaseWarmClaim(Contract):
    """`cmd.warmpool.release`: the sandbox will never run on a warm runtime claimed for it
    (step 4 of the handover, see `ClaimWarmSandbox`); idempotent."""

    sandbox_id: SandboxId


class WarmClaimReleased(Contract):
    """The runtime the released claim had assigned (now destroyed), if any."""

    runtime_id: RuntimeId | None = None


class PoolReservation(Contract):
    """`cmd.sandbox.reserve` (warmpool-svc to sandbox-svc): what one ordinary user's warm
    pool reserves of its owner's sandbox quota (`sandboxes` 0: the pool is gone). sandbox-svc
    keeps it in its own table and counts it in every quota check of that owner."""

    pool: str = Field(min_length=1, max_length=200)
    owner_id: UserId
    sandboxes: int = Field(ge=0)
    memory_bytes: int = Field(ge=0)
    storage_bytes: int = Field(default=0, ge=0)


class WarmPoolEvent(Contract):
    """`evt.warmpool.<pool>.<claimed|replenished|scaled|recycled|deleted>`."""

    pool: PoolName
    event: WarmPoolEventName
    count: int = 0
    runtime_ids: list[RuntimeId] = Field(default_factory=list)
    sandbox_id: SandboxId | None = None
