"""Thin subscribers: contract in, runner call, contract out."""

from llmsafespace.contracts import (
    BuildTemplate,
    CancelExecution,
    DeleteFile,
    ExecutionAccepted,
    ExecutionResult,
    ExecutionStdin,
    FileDeleted,
    FileListing,
    InstallPackages,
    ListFiles,
    OpenDownload,
    OpenTerminal,
    OpenUpload,
    RunExecution,
    Sandbox,
    SandboxStatus,
    StartExecution,
    TerminalOpened,
    TransferOpened,
    commands,
    subjects,
)
from llmsafespace.servicekit import Router, handles, hears
from llmsafespace.servicekit.commands import Admit

from .agents import Agents
from .builds import Builds
from .packages import Packages
from .runner import Runner
from .shares import Shares
from .terminals import Terminals
from .transfers import Files

_LET_GO = frozenset({SandboxStatus.TERMINATED, SandboxStatus.FAILED})


def _per_user(limit: int | None, what: str) -> Admit | None:
    """Each user's share of a command's `max_workers` (`shares`); None: no share kept."""
    return None if limit is None else Shares(limit, what).admit


def create_router(
    agents: Agents,
    runner: Runner,
    files: Files,
    packages: Packages,
    max_workers: int,
    *,
    per_user: int | None = None,
) -> Router:
    """exec-svc's commands, each answered by at most `max_workers` handlers at once, of
    which at most `per_user` for one user (admins excepted)."""
    router = Router()

    # Every instance lets go of ended sandboxes. A paused one keeps its connection, so
    # the executions running in it go on once it resumes; its next call resolves again
    # (409 `sandbox_paused`, or an auto-resume).
    @router.subscriber(subjects.SANDBOX_EVENTS)
    async def sandbox_changed(sandbox: Sandbox) -> None:
        if sandbox.status in _LET_GO:
            agents.forget(sandbox.id)
        else:
            agents.pausing(sandbox.id, sandbox.status is SandboxStatus.PAUSED)

    @handles(
        router,
        commands.EXEC_RUN,
        max_workers=max_workers,
        admit=_per_user(per_user, "executions are running"),
    )
    async def run(command: RunExecution) -> ExecutionResult:
        return await runner.run(command)

    @handles(
        router,
        commands.EXEC_START,
        max_workers=max_workers,
        admit=_per_user(per_user, "executions are starting"),
    )
    async def start(command: StartExecution) -> ExecutionAccepted:
        return await runner.start(command)

    @hears(router, commands.EXEC_CANCEL)  # broadcast: every instance hears it
    async def cancel(command: CancelExecution) -> None:
        runner.cancel(command)

    @hears(router, commands.EXEC_STDIN)  # broadcast, in order: every instance hears it
    async def stdin(command: ExecutionStdin) -> None:
        runner.stdin(command)

    @handles(
        router,
        commands.EXEC_FILES_LIST,
        max_workers=max_workers,
        admit=_per_user(per_user, "listings are running"),
    )
    async def list_files(command: ListFiles) -> FileListing:
        return await files.list(command)

    @handles(
        router,
        commands.EXEC_FILES_DELETE,
        max_workers=max_workers,
        admit=_per_user(per_user, "deletes are running"),
    )
    async def delete_file(command: DeleteFile) -> FileDeleted:
        return await files.delete(command)

    @handles(
        router,
        commands.EXEC_FILES_UPLOAD,
        max_workers=max_workers,
        admit=_per_user(per_user, "uploads are opening"),
    )
    async def upload(command: OpenUpload) -> TransferOpened:
        return await files.open_upload(command)

    @handles(
        router,
        commands.EXEC_FILES_DOWNLOAD,
        max_workers=max_workers,
        admit=_per_user(per_user, "downloads are opening"),
    )
    async def download(command: OpenDownload) -> TransferOpened:
        return await files.open_download(command)

    @handles(
        router,
        commands.EXEC_PACKAGES_INSTALL,
        max_workers=max_workers,
        admit=_per_user(per_user, "installs are running"),
    )
    async def install(command: InstallPackages) -> ExecutionResult:
        return await packages.install(command)

    @handles(
        router,
        commands.EXEC_PACKAGES_START,
        max_workers=max_workers,
        admit=_per_user(per_user, "installs are starting"),
    )
    async def start_install(command: InstallPackages) -> ExecutionAccepted:
        return await packages.start(command)

    return router


def create_build_router(builds: Builds, max_workers: int) -> Router:
    router = Router()

    @handles(router, commands.EXEC_TEMPLATE_BUILD, max_workers=max_workers)
    async def build(command: BuildTemplate) -> ExecutionAccepted:
        return await builds.start(command)

    return router


def create_terminal_router(
    terminals: Terminals, max_workers: int, *, per_user: int | None = None
) -> Router:
    router = Router()

    @handles(
        router,
        commands.TERM_OPEN,
        max_workers=max_workers,
        admit=_per_user(per_user, "terminals are opening"),
    )
    async def open_terminal(command: OpenTerminal) -> TerminalOpened:
        return await terminals.open(command)

    return router
