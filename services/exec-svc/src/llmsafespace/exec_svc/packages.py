"""Package installs: validated names (on the contract), run as one command in the sandbox.

An install is an execution: its output is published on the execution's output subject
like a streamed execution's (`started`, `output` chunks, `ended`), so a WebSocket can
follow it (`resume` from seq 0), and `cmd.exec.packages.start` answers as soon as it has
started. `cmd.exec.packages.install` answers with the whole result.

Where the packages come from:
* a mirror configured for exec-svc (`PACKAGE_INDEX_URL` for pip, `NPM_REGISTRY_URL` for
  npm): exec-svc fetches the packages and pushes them into the sandbox, so a sandbox
  without network installs them (pip offline into `/workspace/.packages`, on the
  interpreter's `sys.path`; npm from a registry served on the sandbox's own loopback
  into `/workspace/node_modules`);
* otherwise the public index, straight from a sandbox that can reach it;
* otherwise nothing: 409 `network_disabled`, before anything runs.
"""

import contextlib
import io
import secrets
import shlex
from datetime import UTC, datetime
from importlib.resources import files
from typing import IO

import structlog
from nats.aio.client import Client as NatsClient

from llmsafespace.contracts import (
    ErrorCode,
    ExecEventName,
    ExecuteRequest,
    ExecutionAccepted,
    ExecutionError,
    ExecutionResult,
    ExecutionStatus,
    ExecutionType,
    FileEvent,
    InstallPackages,
    PackageManager,
    RunExecution,
    ServiceError,
    subjects,
)
from llmsafespace.contracts.files import CHUNK_BYTES
from llmsafespace.runtime import AgentClient, DriverError
from llmsafespace.servicekit import Bus

from .agent_errors import agent_failures
from .agents import Agents
from .background import Background
from .mirror import Mirror
from .npm import NpmMirror
from .output import OutputPublisher
from .results import bare_result
from .runner import Runner

log = structlog.get_logger()
TARGET = "/workspace/.packages"
NODE_MODULES = "/workspace/node_modules"
PROBE_SECONDS = 3.0  # how long the sandbox may take to reach the public index
PUBLIC_INDEX = {PackageManager.PIP: "pypi.org", PackageManager.NPM: "registry.npmjs.org"}
MIRROR_SETTING = {PackageManager.PIP: "PACKAGE_INDEX_URL", PackageManager.NPM: "NPM_REGISTRY_URL"}
_PIP_OPTIONS = "--upgrade --no-cache-dir --disable-pip-version-check --no-input"
# --offline=false: a sandbox without network has NPM_CONFIG_OFFLINE=true (a user's npm
# fails at once), but the mirror's registry is on its own loopback.
_NPM_OPTIONS = "--no-audit --no-fund --no-update-notifier --loglevel=http --offline=false"
SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"
# npm must exist; node trusts the system's CAs too (as pip does), e.g. a TLS-inspecting proxy's.
_NPM_PRELUDE = (
    "command -v npm >/dev/null 2>&1 || { echo 'npm is not installed in this sandbox'"
    "'s runtime (use a runtime with Node.js)' >&2; exit 127; }; "
    f"if [ -r {SYSTEM_CA} ]; then export NODE_EXTRA_CA_CERTS={SYSTEM_CA}; fi"
)


def network_disabled(manager: PackageManager) -> ServiceError:
    host = PUBLIC_INDEX[manager]
    return ServiceError(
        ErrorCode.NETWORK_DISABLED,
        f"this sandbox cannot reach {host}, so {manager} cannot download packages: create "
        "the sandbox with networkAccess {enabled: true} (port 443), or set "
        f"{MIRROR_SETTING[manager]} for exec-svc to a {manager} mirror (the sandbox then "
        "receives the packages from exec-svc), or upload the packages with PUT /files and "
        "install them with a command",
        {"manager": manager.value, "setting": MIRROR_SETTING[manager]},
    )


def _probe(host: str) -> str:
    """A command that succeeds when the sandbox can open a TCP connection to host:443."""
    code = (
        "import socket,sys\ntry:\n socket.create_connection((sys.argv[1], 443), "
        f"{PROBE_SECONDS}).close()\nexcept OSError:\n sys.exit(1)"
    )
    return f"python3 -c {shlex.quote(code)} {shlex.quote(host)}"


class Packages:
    def __init__(
        self,
        agents: Agents,
        runner: Runner,
        bus: Bus,
        connection: NatsClient,
        output_limit: int,
        index_url: str | None,
        npm_registry_url: str | None = None,
    ) -> None:
        self._agents = agents
        self._runner = runner
        self._bus = bus
        self._nc = connection
        self._output_limit = output_limit
        self._pip = Mirror(index_url) if index_url else None
        self._npm = NpmMirror(npm_registry_url) if npm_registry_url else None
        self._background = Background()

    async def install(self, command: InstallPackages) -> ExecutionResult:
        """Install and answer with the result (the output is published as well)."""
        await self._admit(command)
        publisher = self._publisher(command)
        await publisher.started(command.request.timeout, datetime.now(UTC))
        try:
            result = await self.fetch_and_install(command, publisher)
        except ServiceError as exc:
            await publisher.ended(_failure(command, exc))
            raise
        await publisher.ended(_streamed(result, publisher))
        return result

    async def start(self, command: InstallPackages) -> ExecutionAccepted:
        """Accept the install once its `started` marker is stored; it runs on after this
        reply, its output and result going only to the output subject."""
        await self._admit(command)
        publisher = self._publisher(command)
        await publisher.started(command.request.timeout, datetime.now(UTC), durable=True)
        self._background.start(self._install_streamed(command, publisher))
        return ExecutionAccepted(execution_id=command.execution_id)

    async def _install_streamed(self, command: InstallPackages, publisher: OutputPublisher) -> None:
        try:
            try:
                result = _streamed(await self.fetch_and_install(command, publisher), publisher)
            except ServiceError as exc:
                result = _failure(command, exc)
            await publisher.ended(result)
        except Exception:
            log.exception("package_install_failed", execution_id=command.execution_id)

    def _publisher(self, command: InstallPackages) -> OutputPublisher:
        return OutputPublisher(
            self._nc, command.sandbox_id, command.execution_id, self._output_limit
        )

    async def _admit(self, command: InstallPackages) -> None:
        """Owner checked; without a mirror the sandbox must reach the public index."""
        manager = command.request.manager
        _, client = await self._agents.client(command.caller, command.sandbox_id)
        if self._mirror_for(manager) is None and not await self._online(command, client):
            raise network_disabled(manager)

    def _mirror_for(self, manager: PackageManager) -> Mirror | NpmMirror | None:
        return self._pip if manager is PackageManager.PIP else self._npm

    async def _online(self, command: InstallPackages, client: AgentClient) -> bool:
        host = PUBLIC_INDEX[command.request.manager]
        with agent_failures(self._agents, command.sandbox_id):
            probe = await client.run_command(_probe(host), timeout=PROBE_SECONDS + 5)
        return probe.exit_code == 0

    async def fetch_and_install(
        self, command: InstallPackages, publisher: OutputPublisher
    ) -> ExecutionResult:
        """Fetch, run (output to ``publisher``, which the caller starts and ends), audit
        (`packages_installed`, or `packages_failed` with why)."""
        try:
            result = await self._run(command, publisher)
        except ServiceError as exc:
            await self._audit(command, None, exc.message)
            raise
        await self._audit(command, result, None)
        return result

    async def _run(self, command: InstallPackages, publisher: OutputPublisher) -> ExecutionResult:
        request = command.request
        staging = f"/tmp/.packages-{secrets.token_hex(6)}"
        names = " ".join(shlex.quote(package) for package in request.packages)
        try:
            if request.manager is PackageManager.PIP:
                script = await self._pip_script(command, publisher, staging, names)
            else:
                script = await self._npm_script(command, publisher, staging, names)
        except BaseException:
            await self._discard(command, staging)
            raise
        script = f"{script}; status=$?; rm -rf {staging}; exit $status"
        run = RunExecution(
            caller=command.caller,
            sandbox_id=command.sandbox_id,
            execution_id=command.execution_id,
            request=ExecuteRequest(
                type=ExecutionType.COMMAND, content=script, timeout=request.timeout
            ),
        )
        return await self._runner.run(run, on_output=publisher.output)

    async def _pip_script(
        self, command: InstallPackages, publisher: OutputPublisher, staging: str, names: str
    ) -> str:
        if self._pip is None:
            return f"python3 -m pip install --target {TARGET} {_PIP_OPTIONS} -- {names}"
        async with self._pip.resolve(command.request.packages) as wheels:
            for wheel in wheels:
                await publisher.output("stdout", f"Fetched {wheel.filename}\n")
                await self._push(command, f"{staging}/{wheel.filename}", wheel.file)
        return (
            f"python3 -m pip install --no-index --find-links {staging} --target {TARGET}"
            f" {_PIP_OPTIONS} -- {names}"
        )

    async def _npm_script(
        self, command: InstallPackages, publisher: OutputPublisher, staging: str, names: str
    ) -> str:
        npm = f"npm install --prefix /workspace --cache {staging}/cache {_NPM_OPTIONS}"
        if self._npm is None:
            return f"{_NPM_PRELUDE}; {npm} {names}"
        # No package-lock.json: its URLs would name the registry that is gone afterwards.
        npm = f"{npm} --no-package-lock"
        async with self._npm.resolve(command.request.packages) as resolution:
            for filename, document in resolution.packuments.items():
                path = f"{staging}/packuments/{filename}"
                await self._push(command, path, io.BytesIO(document))
            for tarball in resolution.tarballs:
                path = f"{staging}/tarballs/{tarball.filename}"
                await self._push(command, path, tarball.file)
        server = files("llmsafespace.exec_svc").joinpath("registry.py").read_bytes()
        await self._push(command, f"{staging}/registry.py", io.BytesIO(server))
        count = resolution.versions
        await publisher.output("stdout", f"Fetched {count} package(s) from the npm mirror\n")
        return f"{_NPM_PRELUDE}; python3 {staging}/registry.py {staging} {npm} {names}"

    async def _audit(
        self, command: InstallPackages, result: ExecutionResult | None, reason: str | None
    ) -> None:
        request = command.request
        installed = result is not None and result.status is ExecutionStatus.COMPLETED
        event = FileEvent(
            execution_id=command.execution_id,
            sandbox_id=command.sandbox_id,
            user_id=command.caller.user_id,
            path=TARGET if request.manager is PackageManager.PIP else NODE_MODULES,
            packages=list(request.packages),
            manager=request.manager,
            exit_code=None if result is None else result.exit_code,
            reason=reason,
        )
        name = ExecEventName.PACKAGES_INSTALLED if installed else ExecEventName.PACKAGES_FAILED
        await self._bus.event(
            subjects.exec_event(command.sandbox_id, command.execution_id, name), event
        )

    async def _push(self, command: InstallPackages, path: str, source: IO[bytes]) -> None:
        _, client = await self._agents.client(command.caller, command.sandbox_id)
        with agent_failures(self._agents, command.sandbox_id):
            upload = await client.open_write(path)
            try:
                while chunk := source.read(CHUNK_BYTES):
                    await upload.send(chunk)
                await upload.finish(None)
            except BaseException:
                await upload.abort()
                raise

    async def _discard(self, command: InstallPackages, staging: str) -> None:
        """Remove what was pushed for an install that will not run (best effort)."""
        with contextlib.suppress(ServiceError, DriverError):
            _, client = await self._agents.client(command.caller, command.sandbox_id)
            await client.delete_file(staging, recursive=True)

    async def drain(self) -> None:
        """Let accepted installs finish (graceful shutdown)."""
        await self._background.wait()


def _streamed(result: ExecutionResult, publisher: OutputPublisher) -> ExecutionResult:
    """The terminal marker's result: the output went out as chunks already."""
    update = {"output_truncated": publisher.truncated, "stdout": "", "stderr": ""}
    return result.model_copy(update=update)


def _failure(command: InstallPackages, error: ServiceError) -> ExecutionResult:
    """An install that failed before its command ran (e.g. a package the mirror lacks)."""
    return bare_result(
        command, ExecutionError(name=error.code.value, value=error.message, traceback="")
    )
