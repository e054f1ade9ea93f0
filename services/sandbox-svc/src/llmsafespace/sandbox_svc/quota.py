"""Per-user quotas on live sandboxes (status creating or running): how many, how much memory;
and, apart, how many paused sandboxes."""

from dataclasses import dataclass, replace

from llmsafespace.contracts import ErrorCode, ServiceError


@dataclass(frozen=True)
class Usage:
    """What one owner's live sandboxes hold."""

    sandboxes: int
    memory_bytes: int


@dataclass(frozen=True)
class Quota:
    sandboxes: int
    memory_bytes: int
    paused_sandboxes: int = 100  # paused ones count here, not against `sandboxes`

    def within(self, memory_cap_bytes: object) -> "Quota":
        """This quota with its memory clamped to what the runtime can give all sandboxes
        together (``memoryCapBytes`` of the driver's protections; None: no known cap).
        Only the memory changes: the counts are kept as configured."""
        if not isinstance(memory_cap_bytes, int) or memory_cap_bytes >= self.memory_bytes:
            return self
        return replace(self, memory_bytes=memory_cap_bytes)

    def admit(self, usage: Usage, memory_bytes: int, sandboxes: int = 1) -> None:
        """Raise 429 `quota_exceeded` unless `sandboxes` more (one, or what a warm pool
        reserves) of `memory_bytes` together fit."""
        if usage.sandboxes + sandboxes > self.sandboxes:
            raise ServiceError(
                ErrorCode.QUOTA_EXCEEDED,
                f"quota exceeded: {usage.sandboxes} live or reserved sandboxes of"
                f" {self.sandboxes} allowed, {sandboxes} more requested (a warm pool's size"
                " counts against its owner's quota)",
                {
                    "resource": "sandboxes",
                    "limit": self.sandboxes,
                    "current": usage.sandboxes,
                    "requested": sandboxes,
                },
            )
        if usage.memory_bytes + memory_bytes > self.memory_bytes:
            raise ServiceError(
                ErrorCode.QUOTA_EXCEEDED,
                f"quota exceeded: {usage.memory_bytes} bytes of memory in use,"
                f" {memory_bytes} more requested, {self.memory_bytes} allowed",
                {
                    "resource": "memory",
                    "limit": self.memory_bytes,
                    "current": usage.memory_bytes,
                    "requested": memory_bytes,
                },
            )

    def admit_paused(self, paused: int) -> None:
        """Raise 429 `quota_exceeded` unless one more sandbox may be paused."""
        if paused + 1 > self.paused_sandboxes:
            raise ServiceError(
                ErrorCode.QUOTA_EXCEEDED,
                f"quota exceeded: {paused} paused sandboxes of {self.paused_sandboxes} allowed",
                {
                    "resource": "pausedSandboxes",
                    "limit": self.paused_sandboxes,
                    "current": paused,
                    "requested": 1,
                },
            )


@dataclass(frozen=True)
class SnapshotQuota:
    """How many snapshots one user may keep, and their total size (uncompressed bytes)."""

    snapshots: int
    bytes: int

    def admit(self, count: int, used_bytes: int, size_bytes: int) -> None:
        """Raise 429 `quota_exceeded` unless one more snapshot of `size_bytes` fits."""
        if count + 1 > self.snapshots:
            raise ServiceError(
                ErrorCode.QUOTA_EXCEEDED,
                f"quota exceeded: {count} snapshots of {self.snapshots} allowed",
                {
                    "resource": "snapshots",
                    "limit": self.snapshots,
                    "current": count,
                    "requested": 1,
                },
            )
        if used_bytes + size_bytes > self.bytes:
            raise ServiceError(
                ErrorCode.QUOTA_EXCEEDED,
                f"quota exceeded: snapshots hold {used_bytes} bytes, {size_bytes} more,"
                f" {self.bytes} allowed",
                {
                    "resource": "snapshotBytes",
                    "limit": self.bytes,
                    "current": used_bytes,
                    "requested": size_bytes,
                },
            )
