"""The names of the events on `evt.>`: the last token of each event subject."""

from enum import StrEnum


class SandboxEventName(StrEnum):
    """`evt.sandbox.<sandbox>.<name>`, the payload a `Sandbox`."""

    CREATED = "created"
    RUNNING = "running"
    FAILED = "failed"
    TERMINATED = "terminated"
    EXPIRED = "expired"
    PAUSED = "paused"
    RESUMED = "resumed"


class WarmPoolEventName(StrEnum):
    """`evt.warmpool.<pool>.<name>`, the payload a `WarmPoolEvent`."""

    CLAIMED = "claimed"
    REPLENISHED = "replenished"
    SCALED = "scaled"
    RECYCLED = "recycled"
    DELETED = "deleted"


class ExecEventName(StrEnum):
    """`evt.exec.<sandbox>.<execution>.<name>`: an `ExecutionEvent` for the execution's
    own events, a `FileEvent` for files and package installs."""

    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    FILE_WRITTEN = "file_written"
    FILE_DELETED = "file_deleted"
    PACKAGES_INSTALLED = "packages_installed"
    PACKAGES_FAILED = "packages_failed"
