"""The four LLMSafeSpace services as child processes, configured by environment only."""

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from llmsafespace.devstack import processes
from llmsafespace.devstack.errors import StackError
from llmsafespace.devstack.ports import HOST

READY_TIMEOUT = 60.0
REPLICAS_ENV = "LLMSAFESPACE_REPLICAS"
MAX_REPLICAS = 16


@dataclass(frozen=True)
class ServiceSpec:
    """What to run: `python -m module`, with HTTP settings under env_prefix."""

    name: str
    module: str
    env_prefix: str
    uses_runtime: bool = False


SERVICES = (
    ServiceSpec("api-gateway", "llmsafespace.gateway", "GATEWAY_"),
    ServiceSpec("sandbox-svc", "llmsafespace.sandbox_svc", "SANDBOX_SVC_", uses_runtime=True),
    ServiceSpec("warmpool-svc", "llmsafespace.warmpool_svc", "WARMPOOL_SVC_", uses_runtime=True),
    ServiceSpec("exec-svc", "llmsafespace.exec_svc", "EXEC_SVC_"),
    ServiceSpec("audit-svc", "llmsafespace.audit_svc", "AUDIT_SVC_"),
)


def replica_count(spec: ServiceSpec, environ: Mapping[str, str]) -> int:
    """How many processes of a service to run: `LLMSAFESPACE_REPLICAS_<NAME>` (e.g.
    `LLMSAFESPACE_REPLICAS_EXEC_SVC`), else `LLMSAFESPACE_REPLICAS`, else 1."""
    own = f"{REPLICAS_ENV}_{spec.name.upper().replace('-', '_')}"
    for variable in (own, REPLICAS_ENV):
        value = environ.get(variable, "").strip()
        if not value:
            continue
        if not value.isdigit() or not 1 <= int(value) <= MAX_REPLICAS:
            raise StackError(f"{variable}={value!r}: a whole number from 1 to {MAX_REPLICAS}")
        return int(value)
    return 1


def replica_name(spec: ServiceSpec, replica: int) -> str:
    """`exec-svc` for the first replica, `exec-svc-1`, `exec-svc-2`, … for the others
    (also the name of its log file)."""
    return spec.name if replica == 0 else f"{spec.name}-{replica}"


@dataclass
class ServiceProcess:
    """One running (or restartable) process of a service — replica `replica` (0-based) —
    with its port, env and current process."""

    spec: ServiceSpec
    port: int
    env: Mapping[str, str]
    log_path: Path
    replica: int = 0
    process: processes.Process | None = field(default=None, init=False)
    restarts: int = field(default=0, init=False)
    paused: bool = field(default=False, init=False)

    @property
    def name(self) -> str:
        return replica_name(self.spec, self.replica)

    @property
    def ready_url(self) -> str:
        return f"http://{HOST}:{self.port}/ready"

    def spawn(self) -> processes.Process:
        self.process = processes.spawn(
            [sys.executable, "-m", self.spec.module], log_path=self.log_path, env=self.env
        )
        return self.process

    async def wait_ready(self, within: float = READY_TIMEOUT, *, restarting: bool = False) -> None:
        """Poll /ready. `restarting`: the process may have been killed and be waiting for
        the supervisor to start it again, so its exit is no failure; only no answer
        within `within` is."""
        async with httpx.AsyncClient(timeout=2.0) as client:

            async def ready() -> bool:
                try:
                    response = await client.get(self.ready_url)
                except httpx.TransportError:
                    return False
                return response.status_code == 200

            await processes.wait_ready(
                self.name,
                ready,
                process=None if restarting else self.process,
                log_path=self.log_path,
                within=within,
                interval=0.2,
            )


def service_env(
    spec: ServiceSpec,
    *,
    common: Mapping[str, str],
    port: int,
    admin_key: str,
    token_secret: str,
    runtime_dir: Path,
    snapshot_dir: Path,
    runtime_driver: str = "local",
) -> dict[str, str]:
    """The service-specific environment on top of the shared one."""
    env = {
        **common,
        f"{spec.env_prefix}HTTP_HOST": HOST,
        f"{spec.env_prefix}HTTP_PORT": str(port),
    }
    if spec.name == "api-gateway":
        env["GATEWAY_BOOTSTRAP_ADMIN_KEY"] = admin_key
        env["GATEWAY_JWT_SECRET"] = token_secret
    if spec.uses_runtime:
        env["RUNTIME_DRIVER"] = runtime_driver
        env["RUNTIME_DIR"] = str(runtime_dir)
    if spec.name == "sandbox-svc":  # users' workspaces: in the private state dir
        env.setdefault("SANDBOX_SVC_SNAPSHOT_DIR", str(snapshot_dir))
    return env
