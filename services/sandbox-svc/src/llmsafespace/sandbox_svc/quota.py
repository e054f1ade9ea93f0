"""Per-user quotas on live sandboxes (status creating or running): how many, how much memory."""

from dataclasses import dataclass

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

    def within(self, memory_cap_bytes: object) -> "Quota":
        """This quota with its memory clamped to what the runtime can give all sandboxes
        together (``memoryCapBytes`` of the driver's protections; None: no known cap)."""
        if not isinstance(memory_cap_bytes, int) or memory_cap_bytes >= self.memory_bytes:
            return self
        return Quota(sandboxes=self.sandboxes, memory_bytes=memory_cap_bytes)

    def admit(self, usage: Usage, memory_bytes: int) -> None:
        """Raise 429 `quota_exceeded` unless one more sandbox of `memory_bytes` fits."""
        if usage.sandboxes + 1 > self.sandboxes:
            raise ServiceError(
                ErrorCode.QUOTA_EXCEEDED,
                f"quota exceeded: {usage.sandboxes} live sandboxes of {self.sandboxes} allowed",
                {
                    "resource": "sandboxes",
                    "limit": self.sandboxes,
                    "current": usage.sandboxes,
                    "requested": 1,
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
