import shutil
from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from llmsafespace.contracts import Catalog, quantity_bytes
from llmsafespace.contracts.sandbox import QUANTITY_PATTERN
from llmsafespace.runtime import RuntimeSettings
from llmsafespace.servicekit import ServiceSettings

from .chunks import ChunkStore, LocalChunkStore, S3ChunkStore
from .quota import Quota, SnapshotQuota


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SANDBOX_SVC_")

    http_port: int = 8081
    runtime: RuntimeSettings = Field(
        default_factory=RuntimeSettings,
        description="RUNTIME_DRIVER, RUNTIME_DIR and KUBERNETES_* (no service prefix)",
    )
    runtimes_file: Path | None = Field(
        default=None,
        validation_alias="RUNTIMES_FILE",
        description="JSON catalog of runtimes and profiles; the built-in one when unset",
    )
    claim_timeout: float = Field(default=2.0, gt=0, description="Seconds for a warm claim")
    max_workers: int = Field(default=64, ge=1, description="Commands handled concurrently")
    quota_sandboxes: int = Field(
        default=100,
        ge=1,
        description="Live sandboxes (creating or running) one user may hold at once; a create"
        " beyond it is 429 `quota_exceeded`. Admins are exempt from every quota.",
    )
    quota_memory: str = Field(
        default="64Gi",
        pattern=QUANTITY_PATTERN,
        description="Total `resources.memory` of one user's live sandboxes (a quantity, e.g."
        " `64Gi`); a create beyond it is 429 `quota_exceeded`. Admins are exempt.",
    )
    quota_storage: str = Field(
        default="100Gi",
        pattern=QUANTITY_PATTERN,
        description="Total `resources.ephemeralStorage` (the workspace's size) of one user's"
        " sandboxes, paused ones included, and what their warm pools reserve; a create beyond"
        " it is 429 `quota_exceeded`. Admins are exempt. With the local driver, lowered at"
        " start to the free space of RUNTIME_DIR's filesystem (`quota_storage_clamped`).",
    )

    quota_templates: int = Field(
        default=20,
        ge=1,
        description="Templates one user may keep (building, ready or failed); a create beyond"
        " it is 429 `quota_exceeded`. Each ready one also counts its layer (at most its"
        " builder's 1Gi workspace) against `quota_storage`. Admins are exempt.",
    )

    quota_paused_sandboxes: int = Field(
        default=100,
        ge=1,
        description="Paused sandboxes one user may hold at once (they do not count against"
        " `quota_sandboxes`); a pause beyond it is 429 `quota_exceeded`.",
    )
    max_paused_timeout: int = Field(
        default=7 * 86400,
        ge=1,
        description="The longest `pausedTimeout` a sandbox gets (seconds); a longer request is"
        " lowered to it.",
    )

    snapshot_dir: Path | None = Field(
        default=None,
        description="Where snapshot chunks are stored; `snapshots` beside RUNTIME_DIR when unset",
    )
    quota_snapshots: int = Field(
        default=50, ge=1, description="Snapshots one user may keep; beyond, 429 `quota_exceeded`"
    )
    quota_snapshot_bytes: str = Field(
        default="20Gi",
        pattern=QUANTITY_PATTERN,
        description="Total size (uncompressed workspace bytes) of one user's snapshots",
    )

    snapshot_s3_bucket: str | None = Field(
        default=None,
        description="Store snapshot chunks in this S3 bucket instead of `snapshot_dir`"
        " (credentials and region from the usual AWS_* variables)",
    )
    snapshot_s3_endpoint: str | None = Field(
        default=None, description="The S3-compatible service's URL (AWS's when unset)"
    )
    snapshot_s3_prefix: str = Field(default="chunks/", description="Key prefix of chunks")

    def chunk_store(self) -> ChunkStore:
        """S3 when a bucket is named, else a directory (`snapshots` beside RUNTIME_DIR)."""
        if self.snapshot_s3_bucket:
            return S3ChunkStore(
                self.snapshot_s3_bucket, self.snapshot_s3_prefix, self.snapshot_s3_endpoint
            )
        return LocalChunkStore(self.snapshot_dir or self.runtime.dir.parent / "snapshots")

    def snapshot_quota(self) -> SnapshotQuota:
        return SnapshotQuota(
            snapshots=self.quota_snapshots, bytes=quantity_bytes(self.quota_snapshot_bytes)
        )

    def quota(self) -> Quota:
        return Quota(
            sandboxes=self.quota_sandboxes,
            memory_bytes=quantity_bytes(self.quota_memory),
            paused_sandboxes=self.quota_paused_sandboxes,
            storage_bytes=quantity_bytes(self.quota_storage),
            templates=self.quota_templates,
        )

    def storage_cap_bytes(self) -> int | None:
        """The free space where the local driver keeps workspaces (sparse images: each
        takes the host's disk as it is written) and template layers: the runtime dir's
        filesystem, now. None on Kubernetes, whose nodes and their ephemeral-storage
        limits decide."""
        if self.runtime.driver != "local":
            return None
        place = self.runtime.dir.absolute()
        while not place.exists():  # not made yet: the filesystem it will be made on
            place = place.parent
        return shutil.disk_usage(place).free

    def catalog(self) -> Catalog:
        """The runtimes and profiles on offer: from `runtimes_file`, else the built-in ones."""
        if self.runtimes_file is None:
            return Catalog()
        return Catalog.model_validate_json(self.runtimes_file.read_text())
