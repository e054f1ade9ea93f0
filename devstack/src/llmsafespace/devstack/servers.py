"""The three backing servers: embedded ones, or existing ones named by NATS_URL etc."""

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from llmsafespace.devstack.nats_server import NatsServer
from llmsafespace.devstack.postgres_server import PostgresServer
from llmsafespace.devstack.processes import Process
from llmsafespace.devstack.redis_server import RedisServer


class Server(Protocol):
    name: str

    @property
    def url(self) -> str: ...

    @property
    def process(self) -> Process | None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class ExternalServer:
    """A server someone else runs: its URL is given, starting and stopping do nothing."""

    name: str
    url: str

    @property
    def process(self) -> Process | None:
        return None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


@dataclass(frozen=True)
class Servers:
    nats: Server
    postgres: Server
    redis: Server

    def all(self) -> tuple[Server, Server, Server]:
        return (self.nats, self.postgres, self.redis)


def without_password(url: str) -> str:
    """The URL to show in a log: its password (if any) replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    netloc = f"{user}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def nats_url_for(server: Server, service: str) -> str:
    """The URL a service connects to NATS with: its own user on the embedded server; an
    external server's URL (`NATS_URL`) as given, for every service."""
    if isinstance(server, NatsServer):
        return server.url_for(service)
    return server.url


def choose_servers(state_dir: Path, log_dir: Path, environ: Mapping[str, str]) -> Servers:
    """Embedded servers under state_dir, except where environ already names a URL."""
    nats_url = environ.get("NATS_URL")
    database_url = environ.get("DATABASE_URL")
    redis_url = environ.get("REDIS_URL")
    return Servers(
        nats=ExternalServer("nats", nats_url) if nats_url else NatsServer(state_dir, log_dir),
        postgres=(
            ExternalServer("postgres", database_url)
            if database_url
            else PostgresServer(state_dir, log_dir)
        ),
        redis=ExternalServer("redis", redis_url) if redis_url else RedisServer(state_dir, log_dir),
    )


def _scratch_dir(prefix: str) -> Path:
    """A fresh directory under /tmp that a server's unprivileged user can reach."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@asynccontextmanager
async def scratch_server(kind: Callable[[Path, Path], Server], prefix: str) -> AsyncIterator[str]:
    """An embedded server (`PostgresServer`, `RedisServer`, …) of its own in a fresh
    directory, for tests that need a real one and no stack: its URL for the block; then
    it is stopped and the directory removed."""
    state_dir = await asyncio.to_thread(_scratch_dir, prefix)
    try:
        server = kind(state_dir, state_dir / "logs")
        await server.start()
        try:
            yield server.url
        finally:
            await server.stop()
    finally:
        await asyncio.to_thread(shutil.rmtree, state_dir, True)
