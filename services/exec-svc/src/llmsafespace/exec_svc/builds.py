"""Template builds: a template's installs and setup commands, run in its builder sandbox
as one execution.

Every step's output goes to the build's one output subject (`started`, `output` chunks,
`ended`), so a client follows the whole build with `resume {executionId, lastSeq: 0}` on
the builder's WebSocket. pip installs into `/workspace/.packages` and npm into
`/workspace/node_modules` (from the mirror when exec-svc has one, as `POST /packages`
does); the setup commands then run in `/workspace`. The first failing step ends the
build; the outcome says why, with the end of the log.
"""

import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog
from nats.aio.client import Client as NatsClient

from llmsafespace.contracts import (
    BuildTemplate,
    EndedBy,
    ExecuteRequest,
    ExecutionAccepted,
    ExecutionError,
    ExecutionResult,
    ExecutionStatus,
    ExecutionType,
    InstallPackages,
    PackageManager,
    RunExecution,
    ServiceError,
    TemplateBuilt,
    commands,
    new_execution_id,
)
from llmsafespace.contracts.files import InstallPackagesRequest
from llmsafespace.contracts.templates import LOG_TAIL_CHARS
from llmsafespace.servicekit import Bus

from .background import Background
from .output import OutputPublisher
from .packages import Packages
from .results import bare_result
from .runner import Runner

log = structlog.get_logger()
REPORT_SECONDS = 600.0
WHY_CHARS = 300  # of a failed step's last stderr line, in the build's reason
Step = Callable[[float], Awaitable[ExecutionResult]]


class Builds:
    def __init__(
        self,
        runner: Runner,
        packages: Packages,
        bus: Bus,
        connection: NatsClient,
        output_limit: int,
    ) -> None:
        self._runner = runner
        self._packages = packages
        self._bus = bus
        self._nc = connection
        self._output_limit = output_limit
        self._background = Background()

    async def start(self, command: BuildTemplate) -> ExecutionAccepted:
        """Accept the build once its `started` marker is stored; it runs on after this."""
        publisher = OutputPublisher(
            self._nc, command.sandbox_id, command.execution_id, self._output_limit
        )
        started_at = datetime.now(UTC)
        await publisher.started(command.timeout, started_at, durable=True)
        self._background.start(self._report(command, publisher, started_at))
        return ExecutionAccepted(execution_id=command.execution_id)

    async def _report(
        self, command: BuildTemplate, publisher: OutputPublisher, started_at: datetime
    ) -> None:
        try:
            built = await self._build(command, publisher, started_at)
        except Exception as exc:  # e.g. the builder vanished: the template must not hang
            log.exception("template_build_crashed", template=command.name)
            built = TemplateBuilt(
                name=command.name, sandbox_id=command.sandbox_id, reason=f"the build broke: {exc}"
            )
            with contextlib.suppress(Exception):
                await publisher.ended(_summary(command, started_at, -1, built.reason, publisher))
        try:  # sandbox-svc then copies the layer: give it time
            await self._bus.request(commands.TEMPLATE_BUILT, built, timeout=REPORT_SECONDS)
        except Exception:
            log.exception("template_build_report_failed", template=command.name)

    async def _build(
        self, command: BuildTemplate, publisher: OutputPublisher, started_at: datetime
    ) -> TemplateBuilt:
        """Run every step (the output streams meanwhile); the outcome."""
        deadline = time.monotonic() + command.timeout
        log_text: list[str] = []
        reason: str | None = None
        exit_code = 0
        for name, step in self._steps(command, publisher):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                reason = f"the build took longer than its timeout ({command.timeout:g} s)"
                break
            try:
                result = await step(remaining)
            except ServiceError as exc:
                reason = f"{name} failed: {exc.message}"
                await publisher.output("stderr", f"{reason}\n")
                log_text.append(reason)
                exit_code = -1
                break
            log_text += [result.stdout, result.stderr]
            if result.status is not ExecutionStatus.COMPLETED or result.exit_code != 0:
                how = "" if result.ended_by in (None, EndedBy.EXIT) else f"{result.ended_by}, "
                reason = f"{name} failed ({how}exit code {result.exit_code})" + _why(result)
                exit_code = result.exit_code
                break
        await publisher.ended(_summary(command, started_at, exit_code, reason, publisher))
        log.info("template_built", template=command.name, failed=reason is not None)
        return TemplateBuilt(
            name=command.name,
            sandbox_id=command.sandbox_id,
            reason=reason,
            log_tail="".join(log_text)[-LOG_TAIL_CHARS:],
        )

    async def drain(self) -> None:
        """Let accepted builds finish (graceful shutdown)."""
        await self._background.wait()

    def _steps(self, command: BuildTemplate, publisher: OutputPublisher) -> list[tuple[str, Step]]:
        """Name and run (given the seconds left) of each step, in order."""
        steps: list[tuple[str, Step]] = []
        for manager, names in (
            (PackageManager.PIP, command.packages.pip),
            (PackageManager.NPM, command.packages.npm),
        ):
            if names:
                install = self._install(command, publisher, manager, names)
                steps.append((f"{manager} install", install))
        for number, script in enumerate(command.setup_commands, 1):
            steps.append((f"setup command {number}", self._setup(command, publisher, script)))
        return steps

    def _install(
        self,
        command: BuildTemplate,
        publisher: OutputPublisher,
        manager: PackageManager,
        names: list[str],
    ) -> Step:
        async def install(timeout: float) -> ExecutionResult:
            install = InstallPackages(
                caller=command.caller,
                sandbox_id=command.sandbox_id,
                execution_id=new_execution_id(),
                request=InstallPackagesRequest(packages=names, manager=manager, timeout=timeout),
            )
            return await self._packages.fetch_and_install(install, publisher)

        return install

    def _setup(self, command: BuildTemplate, publisher: OutputPublisher, script: str) -> Step:
        async def setup(timeout: float) -> ExecutionResult:
            run = RunExecution(
                caller=command.caller,
                sandbox_id=command.sandbox_id,
                execution_id=new_execution_id(),
                request=ExecuteRequest(type=ExecutionType.COMMAND, content=script, timeout=timeout),
            )
            return await self._runner.run(run, on_output=publisher.output)

        return setup


def _why(result: ExecutionResult) -> str:
    """The last line the failed step wrote to stderr (pip's and npm's say what was
    missing), for the reason: `: ERROR: No matching distribution found for nosuchpkg`."""
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    return f": {lines[-1][:WHY_CHARS]}" if lines else ""


def _summary(
    command: BuildTemplate,
    started_at: datetime,
    exit_code: int,
    reason: str | None,
    publisher: OutputPublisher,
) -> ExecutionResult:
    """The build's terminal marker (its output went out as chunks)."""
    error = None
    if reason is not None:
        error = ExecutionError(name="BuildFailed", value=reason, traceback="")
        exit_code = exit_code or 1
    result = bare_result(command, error, exit_code=exit_code, started_at=started_at)
    return result.model_copy(update={"output_truncated": publisher.truncated})
