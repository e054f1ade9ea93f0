"""Per-user quotas on live sandboxes (status creating or running): how many, how much memory;
on the workspace storage of every sandbox that holds one (paused ones too) and of every
ready template layer; and, apart, how many paused sandboxes and how many templates."""

from dataclasses import dataclass, replace

from llmsafespace.contracts import ErrorCode, ServiceError

# What a template's builder sandbox gets as its workspace, and so the most its layer (a copy
# of that workspace) holds: a ready template counts this against its owner's storage quota.
LAYER_STORAGE = "1Gi"


def _admit(resource: str, limit: int, current: int, requested: int, message: str) -> None:
    """Raise 429 `quota_exceeded` unless `requested` more of `resource` fit beside the
    `current` held within `limit`. `message` says so in words; its `{limit}`, `{current}`
    and `{requested}` are filled in only for a refusal."""
    if current + requested > limit:
        raise ServiceError(
            ErrorCode.QUOTA_EXCEEDED,
            "quota exceeded: " + message.format(limit=limit, current=current, requested=requested),
            {"resource": resource, "limit": limit, "current": current, "requested": requested},
        )


@dataclass(frozen=True)
class Usage:
    """What one owner's live sandboxes hold."""

    sandboxes: int
    memory_bytes: int
    storage_bytes: int = 0  # `ephemeralStorage` of live and paused sandboxes, ready layers


@dataclass(frozen=True)
class Quota:
    sandboxes: int
    memory_bytes: int
    paused_sandboxes: int = 100  # paused ones count here, not against `sandboxes`
    storage_bytes: int = 100 * 2**30
    templates: int = 20  # templates one user keeps, whatever their status

    def within(self, memory_cap_bytes: object, storage_cap_bytes: int | None = None) -> "Quota":
        """This quota with its memory clamped to what the runtime can give all sandboxes
        together (``memoryCapBytes`` of the driver's protections; None: no known cap), and
        its storage to the disk there is (`Settings.storage_cap_bytes`; None: the cluster
        decides). Only these change: the counts are kept as configured."""
        quota = self
        if isinstance(memory_cap_bytes, int) and memory_cap_bytes < self.memory_bytes:
            quota = replace(quota, memory_bytes=memory_cap_bytes)
        if storage_cap_bytes is not None and storage_cap_bytes < self.storage_bytes:
            quota = replace(quota, storage_bytes=storage_cap_bytes)
        return quota

    def admit(
        self, usage: Usage, memory_bytes: int, sandboxes: int = 1, storage_bytes: int = 0
    ) -> None:
        """Raise 429 `quota_exceeded` unless `sandboxes` more (one, or what a warm pool
        reserves) of `memory_bytes` and `storage_bytes` together fit."""
        _admit(
            "sandboxes",
            self.sandboxes,
            usage.sandboxes,
            sandboxes,
            "{current} live or reserved sandboxes of {limit} allowed, {requested} more"
            " requested (a warm pool's size counts against its owner's quota)",
        )
        _admit(
            "memory",
            self.memory_bytes,
            usage.memory_bytes,
            memory_bytes,
            "{current} bytes of memory in use, {requested} more requested, {limit} allowed",
        )
        _admit(
            "storage",
            self.storage_bytes,
            usage.storage_bytes,
            storage_bytes,
            "{current} bytes of workspace storage held (paused sandboxes and template layers"
            " included), {requested} more requested, {limit} allowed",
        )

    def admit_template(self, templates: int) -> None:
        """Raise 429 `quota_exceeded` unless one more template may be kept beside
        `templates` (building, ready or failed: a failed one counts until deleted)."""
        _admit(
            "templates",
            self.templates,
            templates,
            1,
            "{current} templates of {limit} allowed (a failed one counts until deleted)",
        )

    def admit_paused(self, paused: int) -> None:
        """Raise 429 `quota_exceeded` unless one more sandbox may be paused."""
        _admit(
            "pausedSandboxes",
            self.paused_sandboxes,
            paused,
            1,
            "{current} paused sandboxes of {limit} allowed",
        )


@dataclass(frozen=True)
class SnapshotQuota:
    """How many snapshots one user may keep, and their total size (uncompressed bytes)."""

    snapshots: int
    bytes: int

    def admit(self, count: int, used_bytes: int, size_bytes: int) -> None:
        """Raise 429 `quota_exceeded` unless one more snapshot of `size_bytes` fits."""
        _admit("snapshots", self.snapshots, count, 1, "{current} snapshots of {limit} allowed")
        _admit(
            "snapshotBytes",
            self.bytes,
            used_bytes,
            size_bytes,
            "snapshots hold {current} bytes, {requested} more, {limit} allowed",
        )
