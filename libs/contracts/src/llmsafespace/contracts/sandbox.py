"""Sandbox resources: the create request, the sandbox as clients see it, and its commands."""

import ipaddress
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from .base import Contract, GivenRequest, Request
from .caller import Caller
from .ids import SandboxId, SnapshotId

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$"
Quantity = Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)]
_UNITS = {
    "": 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
DAY = 86400
MAX_PAUSED_TIMEOUT = 30 * DAY
MAX_MAP_ENTRIES = 64
MIN_CPU = 0.01  # 10 millicores: the smallest share a cgroup or a pod is given
MIN_STORAGE_BYTES = 2**20
MAX_STORAGE_BYTES = 2**50  # 1Pi: no host has more; a user's quota bounds it far below
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 4096
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quantity_bytes(quantity: str) -> int:
    """`"512Mi"` → 536870912. The pattern on `Quantity` guarantees a match."""
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", quantity)
    if match is None:
        raise ValueError(f"not a quantity: {quantity!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _bounded_map(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_MAP_ENTRIES:
        raise ValueError(f"at most {MAX_MAP_ENTRIES} entries")
    for key, item in value.items():
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ValueError(f"keys must be 1-{MAX_KEY_LENGTH} characters")
        if len(item) > MAX_VALUE_LENGTH:
            raise ValueError(f"values must be at most {MAX_VALUE_LENGTH} characters")
        if "\x00" in key or "\x00" in item:
            raise ValueError("keys and values cannot contain NUL characters")
    return value


def valid_env(value: dict[str, str]) -> dict[str, str]:
    """Environment variables: a bounded map of valid names (a sandbox's, a template's)."""
    _bounded_map(value)
    for name in value:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"invalid environment variable name: {name!r}")
    return value


class SecurityLevel(StrEnum):
    STANDARD = "standard"
    HIGH = "high"
    CUSTOM = "custom"


class SandboxStatus(StrEnum):
    CREATING = "creating"
    RUNNING = "running"
    PAUSED = "paused"
    TERMINATED = "terminated"
    FAILED = "failed"


class Resources(Request):
    cpu: float = Field(default=1.0, ge=MIN_CPU, le=16, strict=True)
    memory: Quantity = "512Mi"
    ephemeral_storage: Quantity = "1Gi"

    @field_validator("memory")
    @classmethod
    def _memory_floor(cls, value: str) -> str:
        if quantity_bytes(value) < 32 * 2**20:
            raise ValueError("memory must be at least 32Mi")
        return value

    @field_validator("ephemeral_storage")
    @classmethod
    def _storage_bounds(cls, value: str) -> str:
        size = quantity_bytes(value)
        if size < MIN_STORAGE_BYTES:
            raise ValueError("ephemeralStorage must be at least 1Mi")
        if size > MAX_STORAGE_BYTES:
            raise ValueError("ephemeralStorage must be at most 1Pi")
        return value


# A DNS name, or `*.` and a name for any name below it (not the name itself).
_HOST = re.compile(
    r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
)
# The networks no sandbox reaches, whatever its rules say (the drivers' fences, see
# runtime/unreachable.py): a rule may not name one.
UNREACHABLE_V4 = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4",
    "240.0.0.0/4",
)  # fmt: skip
UNREACHABLE_V6 = (
    "::/127", "::ffff:0:0/96", "64:ff9b::/96", "fc00::/7", "fe80::/10", "ff00::/8",
)  # fmt: skip
_UNREACHABLE = tuple(ipaddress.ip_network(net) for net in (*UNREACHABLE_V4, *UNREACHABLE_V6))


def _host(value: str) -> str:
    name = value.lower().rstrip(".")
    if len(name) > 253 or not _HOST.fullmatch(name):
        raise ValueError(f"{value!r} is not a host name (e.g. pypi.org or *.example.org)")
    return name


def _cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP network (e.g. 151.101.0.0/16)") from None
    if any(network.version == bad.version and network.subnet_of(bad) for bad in _UNREACHABLE):  # type: ignore[arg-type]
        raise ValueError(
            f"{value} is loopback, private, link-local or reserved: sandboxes never reach it"
        )
    return str(network)


class EgressRule(Request):
    """Destinations a network-enabled sandbox may open TCP connections to: these ports on
    these host names or networks, or on any public address when both lists are empty."""

    ports: list[Annotated[int, Field(ge=1, le=65535, strict=True)]] = Field(
        min_length=1, max_length=32
    )
    hosts: list[Annotated[str, AfterValidator(_host)]] = Field(
        default_factory=list,
        max_length=64,
        description="DNS names (`pypi.org`, `*.example.org` for the names below it); "
        "only these resolve inside the sandbox",
    )
    cidrs: list[Annotated[str, AfterValidator(_cidr)]] = Field(
        default_factory=list, max_length=64, description="Public IP networks (`151.101.0.0/16`)"
    )


class NetworkAccess(GivenRequest):
    """Outbound network for a sandbox: off unless `enabled`; listed ports, on public
    addresses or on the host names and networks the rules name.

    Loopback, private, link-local, CGNAT and multicast ranges and the host itself stay
    unreachable whatever the rules say.
    """

    GIVEN: ClassVar[tuple[str, ...]] = ("egress",)  # rules without `enabled` are refused

    enabled: bool = Field(default=False, strict=True)
    egress: list[EgressRule] = Field(
        default_factory=lambda: [EgressRule(ports=[80, 443])], max_length=16
    )

    @model_validator(mode="after")
    def _egress_needs_enabled(self) -> "NetworkAccess":
        if "egress" in self.model_fields_set and not self.enabled:
            raise ValueError("egress rules need `enabled: true`; without it there is no network")
        return self

    def ports(self) -> list[int] | None:
        """The TCP ports allowed, sorted; None when the network is off."""
        if not self.enabled:
            return None
        return sorted({port for rule in self.egress for port in rule.ports})


class CreateSandboxRequest(GivenRequest):
    """`POST /sandboxes` body."""

    GIVEN: ClassVar[tuple[str, ...]] = ("runtime",)  # a template's or snapshot's if omitted

    runtime: str = Field(default="python:3.11", min_length=1, max_length=64)
    security_level: SecurityLevel = SecurityLevel.STANDARD
    timeout: int = Field(
        default=300, ge=1, le=86400, strict=True, description="Lifetime in seconds"
    )
    resources: Resources = Field(default_factory=Resources)
    use_warm_pool: bool = Field(default=True, strict=True)
    metadata: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)
    network_access: NetworkAccess | None = Field(
        default=None, description="Outbound network; none (loopback only) by default"
    )
    paused_timeout: int = Field(
        default=DAY,
        ge=1,
        le=MAX_PAUSED_TIMEOUT,
        strict=True,
        description="Seconds it may stay paused before it is terminated (the operator's cap"
        " applies: the sandbox shows the value in force)",
    )
    auto_resume: bool = Field(
        default=False,
        strict=True,
        description="A call that needs the paused sandbox (execute, files, terminals) resumes"
        " it instead of failing with 409 `sandbox_paused`",
    )
    snapshot: SnapshotId | None = Field(
        default=None,
        description="Start from this snapshot: its workspace, runtime, env and metadata (this"
        " request's `env` and `metadata` entries win); a cold start, unless a warm pool built"
        " from the snapshot (POST /warmpools with `snapshot`) serves it",
    )
    template: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        description="A ready template (POST /templates): its packages and files, read-only, "
        "and its env; the runtime is the template's",
    )

    _metadata_bounds = field_validator("metadata")(_bounded_map)

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        return valid_env(value)


class Sandbox(Contract):
    """A sandbox as its owner sees it."""

    id: SandboxId
    owner_id: str
    status: SandboxStatus
    status_reason: str | None = None
    runtime: str
    security_level: SecurityLevel
    timeout: int
    resources: Resources
    metadata: dict[str, str]
    from_warm_pool: bool = False
    created_at: datetime
    expires_at: datetime = Field(
        description="When its lifetime ends; the clock stops while it is paused (resuming"
        " moves this by the time it spent paused)"
    )
    terminated_at: datetime | None = None
    paused_at: datetime | None = Field(default=None, description="Since when it is paused")
    paused_timeout: int = Field(default=DAY, description="Seconds it may stay paused")
    auto_resume: bool = False
    memory_kept: bool | None = Field(
        default=None,
        description="Only on a resume's reply: whether the interpreter's memory survived the"
        " pause (false where the runtime cannot freeze, e.g. Kubernetes: the workspace was"
        " snapshotted, the runtime removed and a new one restored from it)",
    )


class CreateSandbox(Contract):
    """`cmd.sandbox.create`."""

    caller: Caller
    request: CreateSandboxRequest


class SandboxRef(Contract):
    """`cmd.sandbox.get|terminate|resolve|pause|resume`: one sandbox, on behalf of a caller."""

    caller: Caller
    sandbox_id: SandboxId


class ResolvedSandbox(Contract):
    """`cmd.sandbox.resolve` reply: how a service reaches the sandbox's agent. Never public."""

    sandbox_id: SandboxId
    owner_id: str
    status: SandboxStatus
    endpoint: str
    token: str


class SandboxTimeoutRequest(Request):
    """`POST /sandboxes/{id}/timeout` body: the sandbox now lives `timeout` seconds from now."""

    timeout: int = Field(ge=1, le=86400, strict=True, description="Seconds from now")


class SetSandboxTimeout(Contract):
    """`cmd.sandbox.timeout`: move a sandbox's expiry to now + `timeout`."""

    caller: Caller
    sandbox_id: SandboxId
    timeout: int = Field(ge=1, le=86400)


class ListSandboxes(Contract):
    """`cmd.sandbox.list`: one page of the caller's sandboxes (every sandbox for admins)."""

    caller: Caller
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)
    status: SandboxStatus | None = None
    metadata: dict[str, str] = Field(default_factory=dict)

    _metadata_bounds = field_validator("metadata")(_bounded_map)


class Pagination(Contract):
    limit: int
    offset: int
    total: int


class SandboxPage(Contract):
    """`cmd.sandbox.list` reply and `GET /sandboxes` body."""

    sandboxes: list[Sandbox]
    pagination: Pagination


class SandboxStatusReport(Contract):
    """`cmd.sandbox.status` reply: the sandbox's state now, as seen by its runtime.

    The usage fields are live readings from the runtime while the sandbox runs; a field
    the runtime cannot measure is absent (unknown, not zero). The local driver reads the
    sandbox's cgroup (all but `cpuCores`); Kubernetes reports the memory limit, and CPU
    and memory in use only where the cluster serves the metrics API (metrics-server).
    """

    id: SandboxId
    status: SandboxStatus
    status_reason: str | None = None
    runtime_alive: bool
    uptime_seconds: float
    created_at: datetime
    expires_at: datetime
    from_warm_pool: bool = False
    cpu_ms: float | None = Field(
        default=None, description="CPU time the sandbox has used since it started, in ms"
    )
    cpu_cores: float | None = Field(
        default=None, description="Recent average CPU use in cores (Kubernetes metrics API)"
    )
    memory_bytes: int | None = Field(default=None, description="Memory in use now, in bytes")
    memory_limit_bytes: int | None = Field(default=None, description="The memory limit, in bytes")
    pids: int | None = Field(default=None, description="Processes and threads alive now")
    missing_protections: list[str] = Field(
        default_factory=list,
        description="Protections its security level calls for that this host cannot give "
        "it (e.g. `cgroups`, `seccomp`, `landlock`, `gvisor`); empty normally",
    )
