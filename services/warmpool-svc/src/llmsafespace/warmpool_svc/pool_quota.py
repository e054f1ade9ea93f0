"""What an ordinary user's warm pools may hold. A pool's ready sandboxes are the owner's
as much as the sandboxes they created: each pool reserves its size (`maxSize` when it
autoscales, else `minSize`) of the owner's sandbox, memory and storage quota, which those pools,
the owner's live sandboxes and the new pool must fit together; sandbox-svc, whose quota
it is, admits each reservation (`cmd.sandbox.reserve`). Admins are exempt (their pools
are shared)."""

from dataclasses import dataclass

from llmsafespace.contracts import (
    ErrorCode,
    PoolReservation,
    ServiceError,
    WarmPoolSpec,
    quantity_bytes,
)


def reserved_size(spec: WarmPoolSpec) -> int:
    """The sandboxes a pool may keep at once."""
    return spec.max_size if spec.auto_scaling.enabled else spec.min_size


def reservation(key: str, owner_id: str, spec: WarmPoolSpec | None) -> PoolReservation:
    """What an ordinary user's pool reserves, as sandbox-svc counts it (None: the pool is
    gone, it reserves nothing)."""
    size = 0 if spec is None else reserved_size(spec)
    if spec is None:
        return PoolReservation(pool=key, owner_id=owner_id, sandboxes=0, memory_bytes=0)
    return PoolReservation(
        pool=key,
        owner_id=owner_id,
        sandboxes=size,
        memory_bytes=size * quantity_bytes(spec.resources.memory),
        storage_bytes=size * quantity_bytes(spec.resources.ephemeral_storage),
    )


@dataclass(frozen=True)
class PoolLimits:
    """How many pools an ordinary user may own, and how large. What their sizes reserve of
    the owner's sandbox quota, sandbox-svc admits (`cmd.sandbox.reserve`)."""

    pools: int
    size: int

    def check_size(self, spec: WarmPoolSpec) -> None:
        """403 `forbidden` for a pool larger than ordinary users may make."""
        if reserved_size(spec) > self.size:
            field = "maxSize" if spec.auto_scaling.enabled else "minSize"
            raise ServiceError(
                ErrorCode.FORBIDDEN,
                f"only admins may create warm pools of more than {self.size} sandboxes",
                {"field": field, "limit": self.size, "requested": reserved_size(spec)},
            )

    def admit(self, pools: int) -> None:
        """429 `quota_exceeded` unless one more pool fits beside the owner's `pools`."""
        if pools + 1 > self.pools:
            raise ServiceError(
                ErrorCode.QUOTA_EXCEEDED,
                f"quota exceeded: {pools} warm pools of {self.pools} allowed",
                {"resource": "warmPools", "limit": self.pools, "current": pools, "requested": 1},
            )
