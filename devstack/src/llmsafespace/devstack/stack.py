"""The whole embedded stack: servers, then the services, supervised until stop()."""

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import structlog

from llmsafespace.devstack import processes
from llmsafespace.devstack.errors import StackError
from llmsafespace.devstack.ports import HOST, free_port, port_is_free
from llmsafespace.devstack.reaper import OrphanReaper, become_subreaper
from llmsafespace.devstack.secrets_store import (
    load_or_create_admin_key,
    load_or_create_token_secret,
)
from llmsafespace.devstack.servers import Servers, choose_servers
from llmsafespace.devstack.services import SERVICES, ServiceProcess, ServiceSpec, service_env
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
    everything, sweeps leftover sandboxes and leaves no process behind.
    """

    def __init__(
        self,
        state_dir: Path,
        api_port: int = 8080,
        *,
        services: Sequence[ServiceSpec] = SERVICES,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.state_dir = state_dir.absolute()
        self._api_port = api_port
        self._specs = tuple(services)
        self._environ = dict(os.environ if environ is None else environ)
        self._lock = StateLock(self.state_dir)
        self._servers: Servers = choose_servers(self.state_dir, self.log_dir, self._environ)
        self._services: dict[str, ServiceProcess] = {}
        self._admin_key: str | None = None
        self._token_secret = ""
        self._supervisor: asyncio.Task[None] | None = None
        self._reaper = OrphanReaper(self._is_managed)
        self._log = structlog.get_logger("llmsafespace.devstack").bind(state_dir=str(state_dir))

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def runtime_dir(self) -> Path:
        return self.state_dir / "runtime"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self._api_port}/api/v1"

    @property
    def admin_key(self) -> str:
        if self._admin_key is None:
            raise StackError("the stack has not been started")
        return self._admin_key

    @property
    def env(self) -> dict[str, str]:
        """The environment every service gets (each adds its own HTTP host and port)."""
        return {
            "NATS_URL": self._servers.nats.url,
            "DATABASE_URL": self._servers.postgres.url,
            "REDIS_URL": self._servers.redis.url,
            "LOG_FORMAT": "json",
        }

    @property
    def servers(self) -> Servers:
        return self._servers

    @property
    def services(self) -> Mapping[str, ServiceProcess]:
        return self._services

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self.runtime_dir.mkdir(exist_ok=True)
        self._lock.acquire()
        try:
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
        self._log.info("stack_started", api_url=self.api_url, services=len(self._services))

    async def _start(self) -> None:
        await asyncio.gather(*(server.start() for server in self._servers.all()))
        for server in self._servers.all():
            self._log.info("server_ready", server=server.name, url=server.url)
        if not self._specs:
            return
        self._api_port = self._api_port or free_port()
        for spec in self._specs:
            port = self._api_port if spec.name == "api-gateway" else free_port()
            env = service_env(
                spec,
                common=self.env,
                port=port,
                admin_key=self.admin_key,
                token_secret=self._token_secret,
                runtime_dir=self.runtime_dir,
            )
            self._services[spec.name] = ServiceProcess(
                spec=spec,
                port=port,
                env={**self._environ, **env},
                log_path=self.log_dir / f"{spec.name}.log",
            )
        for service in self._services.values():
            service.spawn()
        await asyncio.gather(*(service.wait_ready() for service in self._services.values()))
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
                for service in self._services.values()
                if service.process is not None
            )
        )
        swept = await asyncio.to_thread(self._sweep_sandboxes)
        for server in reversed(self._servers.all()):
            await server.stop()
        self._reaper.sweep()
        await asyncio.sleep(0.1)
        self._reaper.sweep()
        self._lock.release()
        self._log.info("stack_stopped", sandboxes_swept=swept)

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        """Send sig to a service (a fault to survive: the supervisor restarts it)."""
        process = self._services[service].process
        if process is not None and process.poll() is None:
            process.send_signal(sig)

    @contextlib.asynccontextmanager
    async def stopped(self, service: str) -> AsyncIterator[None]:
        """Keep a service stopped (gracefully) for the block; start it again and wait
        until it is ready afterwards."""
        target = self._services[service]
        target.paused = True
        try:
            if target.process is not None:
                await processes.stop(target.process, signal.SIGTERM, SERVICE_STOP_TIMEOUT)
            yield
        finally:
            target.spawn()
            target.paused = False
        await target.wait_ready()

    async def restart(self, service: str) -> None:
        """Stop a service gracefully, start it again and wait until it is ready."""
        async with self.stopped(service):
            pass

    async def wait_ready(self, service: str) -> None:
        """Wait until a (possibly restarting) service answers /ready again."""
        await self._services[service].wait_ready()

    def _sweep_sandboxes(self) -> int:
        return sweep(self.runtime_dir)

    def _is_managed(self, pid: int) -> bool:
        managed = [s.process for s in self._services.values()]
        managed += [server.process for server in self._servers.all()]
        return any(process is not None and process.pid == pid for process in managed)

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        started = {name: loop.time() for name in self._services}
        due: dict[str, float] = {}
        while True:
            await asyncio.sleep(SUPERVISE_INTERVAL)
            self._reaper.sweep()
            now = loop.time()
            for name, service in self._services.items():
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
