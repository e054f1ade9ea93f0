"""The whole embedded stack: servers, then the services, supervised until stop()."""

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import structlog

from llmsafespace.contracts.bus_permissions import inbox_prefix
from llmsafespace.devstack import processes, state_dirs
from llmsafespace.devstack.errors import StackError
from llmsafespace.devstack.ports import HOST, free_port, port_is_free
from llmsafespace.devstack.reaper import OrphanReaper, become_subreaper
from llmsafespace.devstack.secrets_store import (
    load_or_create_admin_key,
    load_or_create_token_secret,
)
from llmsafespace.devstack.servers import Servers, choose_servers, nats_url_for, without_password
from llmsafespace.devstack.services import (
    SERVICES,
    ServiceProcess,
    ServiceSpec,
    replica_count,
    replica_name,
    service_env,
)
from llmsafespace.devstack.state_lock import StateLock
from llmsafespace.runtime.local import sweep

SUPERVISE_INTERVAL = 0.5
RESTART_BACKOFF_MAX = 10.0
STABLE_AFTER = 30.0
SERVICE_STOP_TIMEOUT = 10.0


class Stack:
    """Runs NATS, PostgreSQL, Redis and the services for one state directory.

    `await start()` returns once every service answers /ready; a service that exits
    unexpectedly is restarted (with backoff) until `await stop()`, which stops
    everything, sweeps leftover sandboxes and leaves no process behind — unless it was made
    with `keep_sandboxes`: then the sandboxes keep running (with their interpreters'
    state) and a later stack on the same state directory serves them again.

    Each service runs as `LLMSAFESPACE_REPLICAS` processes (or
    `LLMSAFESPACE_REPLICAS_<SERVICE>`, e.g. `LLMSAFESPACE_REPLICAS_EXEC_SVC=3`; default 1),
    each on its own port; every gateway replica serves the API (`api_urls`).
    """

    def __init__(
        self,
        state_dir: Path,
        api_port: int = 8080,
        *,
        services: Sequence[ServiceSpec] = SERVICES,
        environ: Mapping[str, str] | None = None,
        keep_sandboxes: bool = False,
    ) -> None:
        self.state_dir = state_dir.absolute()
        self._keep_sandboxes = keep_sandboxes
        self._api_port = api_port
        self._specs = tuple(services)
        self._environ = dict(os.environ if environ is None else environ)
        self._lock = StateLock(self.state_dir)
        self._servers: Servers = choose_servers(self.state_dir, self.log_dir, self._environ)
        self._replicas: dict[str, list[ServiceProcess]] = {}
        self._admin_key: str | None = None
        self._token_secret = ""
        self._supervisor: asyncio.Task[None] | None = None
        self._reaper = OrphanReaper(self._is_managed)
        self._log = structlog.get_logger("llmsafespace.devstack").bind(state_dir=str(state_dir))

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def shared_dir(self) -> Path:
        """Beside the (0700) state dir: what PostgreSQL's and the sandboxes' users reach."""
        return state_dirs.shared_dir(self.state_dir)

    @property
    def runtime_dir(self) -> Path:
        return self.shared_dir / "runtime"

    @property
    def api_url(self) -> str:
        """The first gateway's API."""
        return f"http://{HOST}:{self._api_port}/api/v1"

    @property
    def api_urls(self) -> list[str]:
        """Every gateway replica's API, the first one first."""
        gateways = self._replicas.get("api-gateway", [])
        return [f"http://{HOST}:{gateway.port}/api/v1" for gateway in gateways] or [self.api_url]

    @property
    def admin_key(self) -> str:
        if self._admin_key is None:
            raise StackError("the stack has not been started")
        return self._admin_key

    @property
    def env(self) -> dict[str, str]:
        """The environment every service gets (each adds its own HTTP host and port, and
        its own `NATS_URL`: see `nats_url`)."""
        return {
            "DATABASE_URL": self._servers.postgres.url,
            "REDIS_URL": self._servers.redis.url,
            "LOG_FORMAT": "json",
        }

    def nats_url(self, service: str) -> str:
        """The NATS URL `service` (e.g. `exec-svc`) logs in with: its own user, allowed
        only that service's subjects (`contracts.bus_permissions`)."""
        return nats_url_for(self._servers.nats, service)

    def nats_options(self, service: str) -> dict[str, str]:
        """`nats.connect(**options)` to connect as `service` does (its user and its
        inboxes, the only replies it may receive)."""
        return {"servers": self.nats_url(service), "inbox_prefix": inbox_prefix(service)}

    @property
    def servers(self) -> Servers:
        return self._servers

    @property
    def services(self) -> Mapping[str, ServiceProcess]:
        """Each service's first replica."""
        return {name: replicas[0] for name, replicas in self._replicas.items()}

    @property
    def replicas(self) -> Mapping[str, Sequence[ServiceProcess]]:
        """Every process of each service."""
        return self._replicas

    def _processes(self) -> list[ServiceProcess]:
        return [service for replicas in self._replicas.values() for service in replicas]

    def _chosen(self, service: str, replica: int | None) -> list[ServiceProcess]:
        replicas = self._replicas[service]
        return list(replicas) if replica is None else [replicas[replica]]

    async def start(self) -> None:
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            state_dirs.prepare(self.state_dir)  # 0700, and the shared dir (0755) beside it
            self.log_dir.mkdir(mode=0o700, exist_ok=True)
            self.log_dir.chmod(0o700)  # logs are for the operator alone (and root)
            self.runtime_dir.mkdir(exist_ok=True)
            if self._specs and self._api_port and not port_is_free(self._api_port):
                raise StackError(
                    f"port {self._api_port} on {HOST} is already in use "
                    "(stop what uses it or set LLMSAFESPACE_PORT)"
                )
            self._admin_key = load_or_create_admin_key(self.state_dir / "admin.key")
            self._token_secret = load_or_create_token_secret(self.state_dir / "token.secret")
            become_subreaper()
            await self._start()
        except BaseException:
            await self.stop()
            raise
        self._log.info("stack_started", api_urls=self.api_urls, processes=len(self._processes()))

    async def _start(self) -> None:
        await asyncio.gather(*(server.start() for server in self._servers.all()))
        for server in self._servers.all():
            self._log.info("server_ready", server=server.name, url=without_password(server.url))
        if not self._specs:
            return
        self._api_port = self._api_port or free_port()
        for spec in self._specs:
            replicas = self._replicas.setdefault(spec.name, [])
            for replica in range(replica_count(spec, self._environ)):
                first_gateway = spec.name == "api-gateway" and replica == 0
                port = self._api_port if first_gateway else free_port()
                env = service_env(
                    spec,
                    common={**self.env, "NATS_URL": self.nats_url(spec.name)},
                    port=port,
                    admin_key=self.admin_key,
                    token_secret=self._token_secret,
                    runtime_dir=self.runtime_dir,
                    snapshot_dir=self.state_dir / "snapshots",
                    runtime_driver=self._environ.get("RUNTIME_DRIVER", "local"),
                )
                service = ServiceProcess(
                    spec=spec,
                    port=port,
                    env={**self._environ, **env},
                    log_path=self.log_dir / f"{replica_name(spec, replica)}.log",
                    replica=replica,
                )
                replicas.append(service)
        for service in self._processes():
            service.spawn()
        await asyncio.gather(*(service.wait_ready() for service in self._processes()))
        self._supervisor = asyncio.create_task(self._supervise(), name="devstack-supervisor")

    async def stop(self) -> None:
        """Stop everything this stack started; safe to call more than once."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await asyncio.gather(
            *(
                processes.stop(service.process, signal.SIGTERM, SERVICE_STOP_TIMEOUT)
                for service in self._processes()
                if service.process is not None
            )
        )
        swept = 0 if self._keep_sandboxes else await asyncio.to_thread(self._sweep_sandboxes)
        for server in reversed(self._servers.all()):
            await server.stop()
        self._reaper.sweep()
        await asyncio.sleep(0.1)
        self._reaper.sweep()
        self._lock.release()
        self._log.info("stack_stopped", sandboxes_swept=swept)

    def kill(self, service: str, sig: int = signal.SIGKILL, replica: int | None = None) -> None:
        """Send sig to every replica of a service, or to one (a fault to survive: the
        supervisor restarts it)."""
        for target in self._chosen(service, replica):
            process = target.process
            if process is not None and process.poll() is None:
                process.send_signal(sig)

    @contextlib.asynccontextmanager
    async def stopped(self, service: str, replica: int | None = None) -> AsyncIterator[None]:
        """Keep a service (every replica, or one) stopped gracefully for the block; start
        it again and wait until it is ready afterwards."""
        targets = self._chosen(service, replica)
        for target in targets:
            target.paused = True
        try:
            await asyncio.gather(
                *(
                    processes.stop(target.process, signal.SIGTERM, SERVICE_STOP_TIMEOUT)
                    for target in targets
                    if target.process is not None
                )
            )
            yield
        finally:
            for target in targets:
                target.spawn()
                target.paused = False
        await asyncio.gather(*(target.wait_ready() for target in targets))

    @contextlib.asynccontextmanager
    async def server_stopped(self, server: str) -> AsyncIterator[None]:
        """Keep a backing server (`nats`, `postgres` or `redis`) stopped for the block, then
        start it again on the same port with the same data directory. The services keep
        running throughout: an outage for them to survive."""
        target = {each.name: each for each in self._servers.all()}[server]
        if target.process is None:
            raise StackError(f"{server} is not run by this stack")
        await target.stop()
        try:
            yield
        finally:
            await target.start()

    async def restart(self, service: str, replica: int | None = None) -> None:
        """Stop a service (every replica, or one) gracefully, start it again and wait
        until it is ready."""
        async with self.stopped(service, replica):
            pass

    async def wait_ready(self, service: str, replica: int | None = None) -> None:
        """Wait until a service that may have been killed answers /ready again: a replica
        that exited and waits for its restart is waited for, not reported."""
        await asyncio.gather(
            *(target.wait_ready(restarting=True) for target in self._chosen(service, replica))
        )

    def _sweep_sandboxes(self) -> int:
        return sweep(self.runtime_dir)

    def _is_managed(self, pid: int) -> bool:
        managed = [s.process for s in self._processes()]
        managed += [server.process for server in self._servers.all()]
        return any(process is not None and process.pid == pid for process in managed)

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        started = {service.name: loop.time() for service in self._processes()}
        due: dict[str, float] = {}
        while True:
            await asyncio.sleep(SUPERVISE_INTERVAL)
            self._reaper.sweep()
            now = loop.time()
            for service in self._processes():
                name = service.name
                process = service.process
                if process is None or service.paused or process.poll() is None:
                    continue
                if name not in due:
                    ran = now - started[name]
                    if ran > STABLE_AFTER:
                        service.restarts = 0
                    backoff = min(RESTART_BACKOFF_MAX, 0.5 * 2**service.restarts)
                    due[name] = now + backoff
                    self._log.warning(
                        "service_exited",
                        service=name,
                        code=process.returncode,
                        restart_in=backoff,
                    )
                elif now >= due[name]:
                    del due[name]
                    service.restarts += 1
                    service.spawn()
                    started[name] = now
                    self._log.info("service_restarted", service=name, restarts=service.restarts)
