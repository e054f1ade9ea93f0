"""What an ordinary user's warm pools may hold. A pool's ready sandboxes are the owner's
as much as the sandboxes they created: each pool reserves its size (`maxSize` when it
autoscales, else `minSize`) of the owner's sandbox and memory quota, which those pools,
the owner's live sandboxes and the new pool must fit together. Admins are exempt (their
pools are shared)."""

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
    memory = 0 if spec is None else size * quantity_bytes(spec.resources.memory)
    return PoolReservation(pool=key, owner_id=owner_id, sandboxes=size, memory_bytes=memory)


@dataclass(frozen=True)
class Holdings:
    """What one owner holds besides the pool being created or changed."""

    pools: int
    sandboxes: int
    memory_bytes: int


@dataclass(frozen=True)
class PoolLimits:
    sandboxes: int
    memory_bytes: int
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

    def admit(self, held: Holdings, spec: WarmPoolSpec, *, new: bool) -> None:
        """429 `quota_exceeded` unless the pool fits beside what the owner holds."""
        if new and held.pools + 1 > self.pools:
            self._exceeded("warmPools", self.pools, held.pools, 1)
        size = reserved_size(spec)
        if held.sandboxes + size > self.sandboxes:
            self._exceeded("sandboxes", self.sandboxes, held.sandboxes, size)
        memory = size * quantity_bytes(spec.resources.memory)
        if held.memory_bytes + memory > self.memory_bytes:
            self._exceeded("memory", self.memory_bytes, held.memory_bytes, memory)

    @staticmethod
    def _exceeded(resource: str, limit: int, current: int, requested: int) -> None:
        raise ServiceError(
            ErrorCode.QUOTA_EXCEEDED,
            f"quota exceeded: {resource} {current} held, {requested} more requested,"
            f" {limit} allowed (a warm pool's size counts against its owner's quota)",
            {"resource": resource, "limit": limit, "current": current, "requested": requested},
        )
