"""Thin subscribers: contract in, runner call, contract out."""

from faststream.nats import NatsRouter

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
    subjects,
)

from .agents import Agents
from .builds import Builds
from .packages import Packages
from .runner import Runner
from .terminals import Terminals
from .transfers import Files

_LET_GO = frozenset({SandboxStatus.TERMINATED, SandboxStatus.FAILED, SandboxStatus.PAUSED})


def create_router(
    agents: Agents, runner: Runner, files: Files, packages: Packages, max_workers: int
) -> NatsRouter:
    router = NatsRouter()
    queue = subjects.EXEC_QUEUE

    # Every instance lets go of ended and paused sandboxes (a paused one's next call
    # resolves again: 409 `sandbox_paused`, or an auto-resume).
    @router.subscriber(subjects.SANDBOX_EVENTS)
    async def sandbox_changed(sandbox: Sandbox) -> None:
        if sandbox.status in _LET_GO:
            agents.forget(sandbox.id)

    @router.subscriber(subjects.EXEC_RUN, queue=queue, max_workers=max_workers)
    async def run(command: RunExecution) -> ExecutionResult:
        return await runner.run(command)

    @router.subscriber(subjects.EXEC_START, queue=queue, max_workers=max_workers)
    async def start(command: StartExecution) -> ExecutionAccepted:
        return await runner.start(command)

    @router.subscriber(subjects.EXEC_CANCEL)  # broadcast: every instance hears it
    async def cancel(command: CancelExecution) -> None:
        runner.cancel(command)

    @router.subscriber(subjects.EXEC_STDIN)  # broadcast, in order: every instance hears it
    async def stdin(command: ExecutionStdin) -> None:
        runner.stdin(command)

    @router.subscriber(subjects.EXEC_FILES_LIST, queue=queue, max_workers=max_workers)
    async def list_files(command: ListFiles) -> FileListing:
        return await files.list(command)

    @router.subscriber(subjects.EXEC_FILES_DELETE, queue=queue, max_workers=max_workers)
    async def delete_file(command: DeleteFile) -> FileDeleted:
        return await files.delete(command)

    @router.subscriber(subjects.EXEC_FILES_UPLOAD, queue=queue, max_workers=max_workers)
    async def upload(command: OpenUpload) -> TransferOpened:
        return await files.open_upload(command)

    @router.subscriber(subjects.EXEC_FILES_DOWNLOAD, queue=queue, max_workers=max_workers)
    async def download(command: OpenDownload) -> TransferOpened:
        return await files.open_download(command)

    @router.subscriber(subjects.EXEC_PACKAGES_INSTALL, queue=queue, max_workers=max_workers)
    async def install(command: InstallPackages) -> ExecutionResult:
        return await packages.install(command)

    @router.subscriber(subjects.EXEC_PACKAGES_START, queue=queue, max_workers=max_workers)
    async def start_install(command: InstallPackages) -> ExecutionAccepted:
        return await packages.start(command)

    return router


def create_build_router(builds: Builds, max_workers: int) -> NatsRouter:
    router = NatsRouter()

    @router.subscriber(
        subjects.EXEC_TEMPLATE_BUILD, queue=subjects.EXEC_QUEUE, max_workers=max_workers
    )
    async def build(command: BuildTemplate) -> ExecutionAccepted:
        return await builds.start(command)

    return router


def create_terminal_router(terminals: Terminals, max_workers: int) -> NatsRouter:
    router = NatsRouter()

    @router.subscriber(subjects.TERM_OPEN, queue=subjects.EXEC_QUEUE, max_workers=max_workers)
    async def open_terminal(command: OpenTerminal) -> TerminalOpened:
        return await terminals.open(command)

    return router
