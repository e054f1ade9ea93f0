from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from llmsafespace.contracts import Catalog
from llmsafespace.runtime import RuntimeSettings
from llmsafespace.servicekit import ServiceSettings

from .pool_quota import PoolLimits


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="WARMPOOL_SVC_")

    http_port: int = 8082
    runtime: RuntimeSettings = Field(
        default_factory=RuntimeSettings,
        description="RUNTIME_DRIVER, RUNTIME_DIR and KUBERNETES_* (no service prefix)",
    )
    runtimes_file: Path | None = Field(
        default=None,
        validation_alias="RUNTIMES_FILE",
        description="JSON catalog of runtimes and profiles; the built-in one when unset",
    )
    replenish_interval: float = Field(default=1.0, gt=0, description="Seconds between passes")
    replenish_delay: float = Field(
        default=0.1,
        ge=0,
        le=5,
        description="Seconds from a claim to its pool's replenishment: the claimer's first"
        " requests run before a sandbox start competes with them for CPU, and a burst of"
        " claims is tended once",
    )
    parallel_starts: int = Field(default=4, ge=1, description="Sandboxes started at once")
    preload_timeout: float = Field(default=300.0, gt=0, description="Seconds per preload step")
    max_workers: int = Field(default=64, ge=1, description="Commands handled concurrently")

    max_pools_per_user: int = Field(
        default=5, ge=0, description="Warm pools one ordinary user may own (admins: any)"
    )
    max_pool_size: int = Field(
        default=10,
        ge=0,
        description="Largest pool an ordinary user may make (`maxSize` when it autoscales,"
        " else `minSize`); larger ones are for admins only (403 `forbidden`)",
    )

    def limits(self) -> PoolLimits:
        return PoolLimits(pools=self.max_pools_per_user, size=self.max_pool_size)

    def catalog(self) -> Catalog:
        """The runtimes and profiles on offer: from `runtimes_file`, else the built-in ones."""
        if self.runtimes_file is None:
            return Catalog()
        return Catalog.model_validate_json(self.runtimes_file.read_text())
