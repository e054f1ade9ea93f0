"""Package installs: validated names (on the contract), run as one command in the sandbox.

Sandboxes have no network, so without a mirror an install fails fast (409
`network_disabled`). With `PACKAGE_INDEX_URL` set, exec-svc fetches the wheels from that
index and pushes them into the sandbox, where pip installs them offline into
`/workspace/.packages` (on the interpreter's `sys.path`, so the next run imports them)."""

import secrets
import shlex

from llmsafespace.contracts import (
    ErrorCode,
    ExecuteRequest,
    ExecutionResult,
    ExecutionType,
    FileEvent,
    InstallPackages,
    PackageManager,
    RunExecution,
    ServiceError,
    subjects,
)
from llmsafespace.contracts.files import CHUNK_BYTES
from llmsafespace.runtime import AgentUnavailable, DriverError
from llmsafespace.servicekit import Bus

from .agents import Agents
from .mirror import Mirror, Wheel
from .runner import Runner
from .transfers import service_error

TARGET = "/workspace/.packages"
NETWORK_DISABLED = (
    "this sandbox has no network access, so packages cannot be downloaded: set "
    "PACKAGE_INDEX_URL for exec-svc to a package index mirror (pip; the sandbox then "
    "receives the wheels from exec-svc), or upload wheels with PUT /files and install them "
    "with a command (pip install --no-index --find-links DIR --target /workspace/.packages)"
)


class Packages:
    def __init__(self, agents: Agents, runner: Runner, bus: Bus, index_url: str | None) -> None:
        self._agents = agents
        self._runner = runner
        self._bus = bus
        self._mirror = Mirror(index_url) if index_url else None

    async def install(self, command: InstallPackages) -> ExecutionResult:
        request = command.request
        if self._mirror is None or request.manager is not PackageManager.PIP:
            raise ServiceError(ErrorCode.NETWORK_DISABLED, NETWORK_DISABLED)
        await self._agents.client(command.caller, command.sandbox_id)  # owner check first
        wheelhouse = f"/tmp/.wheels-{secrets.token_hex(6)}"
        async with self._mirror.resolve(request.packages) as wheels:
            for wheel in wheels:
                await self._push(command, f"{wheelhouse}/{wheel.filename}", wheel)
        packages = " ".join(shlex.quote(package) for package in request.packages)
        script = (
            f"python3 -m pip install --no-index --find-links {wheelhouse} --target {TARGET}"
            f" --upgrade --no-cache-dir --disable-pip-version-check --no-input -- {packages};"
            f" status=$?; rm -rf {wheelhouse}; exit $status"
        )
        execute = ExecuteRequest(
            type=ExecutionType.COMMAND, content=script, timeout=request.timeout
        )
        result = await self._runner.run(
            RunExecution(
                caller=command.caller,
                sandbox_id=command.sandbox_id,
                execution_id=command.execution_id,
                request=execute,
            )
        )
        if result.exit_code == 0:
            event = FileEvent(
                execution_id=command.execution_id,
                sandbox_id=command.sandbox_id,
                user_id=command.caller.user_id,
                path=TARGET,
                packages=list(request.packages),
            )
            subject = subjects.exec_event(
                command.sandbox_id, command.execution_id, "packages_installed"
            )
            await self._bus.event(subject, event)
        return result

    async def _push(self, command: InstallPackages, path: str, wheel: Wheel) -> None:
        _, client = await self._agents.client(command.caller, command.sandbox_id)
        try:
            upload = await client.open_write(path)
            try:
                while chunk := wheel.file.read(CHUNK_BYTES):
                    await upload.send(chunk)
                await upload.finish(None)
            except BaseException:
                await upload.abort()
                raise
        except AgentUnavailable as exc:
            self._agents.forget(command.sandbox_id)
            raise service_error(exc, command.sandbox_id) from exc
        except DriverError as exc:
            raise service_error(exc, command.sandbox_id) from exc
