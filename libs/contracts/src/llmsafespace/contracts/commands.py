"""Every command on the bus, tied to its request and reply types.

A `Command` is the one statement of what a subject carries: the caller sends it with
`Bus.request(command, payload)` (the payload must be `command.request`, the reply comes
back as `command.reply`) and the service declares its subscriber from the same
descriptor (`command.subject`, `command.queue`, its handler typed `request -> reply`),
so a caller and a subscriber that disagree are a type error, not a run-time surprise.
A `Broadcast` is a command every instance hears and none answers.

Subjects that carry an id are built per use: `terminal_control(sandbox, terminal)` is a
descriptor like the others. File transfers (`subjects.transfer(id)`) are not commands:
the bytes and credits on a transfer subject are raw frames, not contracts.
"""

from dataclasses import dataclass
from typing import Generic, TypeVar

from . import subjects
from .audit import AuditPage, AuditQuery
from .base import Contract
from .execution import ExecutionResult, RunExecution
from .files import (
    DeleteFile,
    FileDeleted,
    FileListing,
    InstallPackages,
    ListFiles,
    OpenDownload,
    OpenUpload,
    TransferOpened,
)
from .runtimes import Catalog, CatalogQuery
from .sandbox import (
    CreateSandbox,
    ListSandboxes,
    ResolvedSandbox,
    Sandbox,
    SandboxPage,
    SandboxRef,
    SandboxStatusReport,
    SetSandboxTimeout,
)
from .snapshots import (
    CreateSnapshot,
    ListSnapshots,
    RestoreSnapshot,
    Snapshot,
    SnapshotPage,
    SnapshotPools,
    SnapshotPoolsQuery,
    SnapshotRef,
)
from .stream import CancelExecution, ExecutionAccepted, ExecutionStdin, StartExecution
from .templates import (
    BuildTemplate,
    CreateTemplate,
    ListTemplates,
    Template,
    TemplateBuilt,
    TemplateList,
    TemplatePools,
    TemplatePoolsQuery,
    TemplateRef,
)
from .terminal import OpenTerminal, TerminalAttached, TerminalControl, TerminalOpened
from .warmpool import (
    ClaimResult,
    ClaimWarmSandbox,
    CreateWarmPool,
    ListWarmPools,
    PoolReservation,
    ReleaseWarmClaim,
    UpdateWarmPool,
    WarmClaimReleased,
    WarmPool,
    WarmPoolList,
    WarmPoolRef,
)

RequestT = TypeVar("RequestT", bound=Contract)
ReplyT = TypeVar("ReplyT", bound=Contract)


@dataclass(frozen=True)
class Command(Generic[RequestT, ReplyT]):
    """A request/reply subject; one member of `queue` answers (every subscriber when
    `queue` is empty)."""

    subject: str
    request: type[RequestT]
    reply: type[ReplyT]
    queue: str = ""


@dataclass(frozen=True)
class Broadcast(Generic[RequestT]):
    """A subject every instance hears and none answers (e.g. cancel)."""

    subject: str
    request: type[RequestT]


SANDBOX_CREATE = Command(subjects.SANDBOX_CREATE, CreateSandbox, Sandbox, subjects.SANDBOX_QUEUE)
SANDBOX_GET = Command(subjects.SANDBOX_GET, SandboxRef, Sandbox, subjects.SANDBOX_QUEUE)
SANDBOX_LIST = Command(subjects.SANDBOX_LIST, ListSandboxes, SandboxPage, subjects.SANDBOX_QUEUE)
SANDBOX_TERMINATE = Command(subjects.SANDBOX_TERMINATE, SandboxRef, Sandbox, subjects.SANDBOX_QUEUE)
SANDBOX_STATUS = Command(
    subjects.SANDBOX_STATUS, SandboxRef, SandboxStatusReport, subjects.SANDBOX_QUEUE
)
SANDBOX_RESOLVE = Command(
    subjects.SANDBOX_RESOLVE, SandboxRef, ResolvedSandbox, subjects.SANDBOX_QUEUE
)
SANDBOX_TIMEOUT = Command(
    subjects.SANDBOX_TIMEOUT, SetSandboxTimeout, Sandbox, subjects.SANDBOX_QUEUE
)
SANDBOX_CATALOG = Command(subjects.SANDBOX_CATALOG, CatalogQuery, Catalog, subjects.SANDBOX_QUEUE)
SANDBOX_RESERVE = Command(
    subjects.SANDBOX_RESERVE, PoolReservation, PoolReservation, subjects.SANDBOX_QUEUE
)
SANDBOX_PAUSE = Command(subjects.SANDBOX_PAUSE, SandboxRef, Sandbox, subjects.SANDBOX_QUEUE)
SANDBOX_RESUME = Command(subjects.SANDBOX_RESUME, SandboxRef, Sandbox, subjects.SANDBOX_QUEUE)

SNAPSHOT_CREATE = Command(
    subjects.SNAPSHOT_CREATE, CreateSnapshot, Snapshot, subjects.SANDBOX_QUEUE
)
SNAPSHOT_GET = Command(subjects.SNAPSHOT_GET, SnapshotRef, Snapshot, subjects.SANDBOX_QUEUE)
SNAPSHOT_LIST = Command(subjects.SNAPSHOT_LIST, ListSnapshots, SnapshotPage, subjects.SANDBOX_QUEUE)
SNAPSHOT_DELETE = Command(subjects.SNAPSHOT_DELETE, SnapshotRef, Snapshot, subjects.SANDBOX_QUEUE)
SNAPSHOT_RESTORE = Command(
    subjects.SNAPSHOT_RESTORE, RestoreSnapshot, Snapshot, subjects.SANDBOX_QUEUE
)

TEMPLATE_CREATE = Command(
    subjects.TEMPLATE_CREATE, CreateTemplate, Template, subjects.SANDBOX_QUEUE
)
TEMPLATE_GET = Command(subjects.TEMPLATE_GET, TemplateRef, Template, subjects.SANDBOX_QUEUE)
TEMPLATE_LIST = Command(subjects.TEMPLATE_LIST, ListTemplates, TemplateList, subjects.SANDBOX_QUEUE)
TEMPLATE_DELETE = Command(subjects.TEMPLATE_DELETE, TemplateRef, Template, subjects.SANDBOX_QUEUE)
TEMPLATE_RESOLVE = Command(subjects.TEMPLATE_RESOLVE, TemplateRef, Template, subjects.SANDBOX_QUEUE)
TEMPLATE_BUILT = Command(subjects.TEMPLATE_BUILT, TemplateBuilt, Template, subjects.SANDBOX_QUEUE)

WARMPOOL_CLAIM = Command(
    subjects.WARMPOOL_CLAIM, ClaimWarmSandbox, ClaimResult, subjects.WARMPOOL_QUEUE
)
WARMPOOL_RELEASE = Command(
    subjects.WARMPOOL_RELEASE, ReleaseWarmClaim, WarmClaimReleased, subjects.WARMPOOL_QUEUE
)
WARMPOOL_CREATE = Command(
    subjects.WARMPOOL_CREATE, CreateWarmPool, WarmPool, subjects.WARMPOOL_QUEUE
)
WARMPOOL_GET = Command(subjects.WARMPOOL_GET, WarmPoolRef, WarmPool, subjects.WARMPOOL_QUEUE)
WARMPOOL_LIST = Command(
    subjects.WARMPOOL_LIST, ListWarmPools, WarmPoolList, subjects.WARMPOOL_QUEUE
)
WARMPOOL_UPDATE = Command(
    subjects.WARMPOOL_UPDATE, UpdateWarmPool, WarmPool, subjects.WARMPOOL_QUEUE
)
WARMPOOL_DELETE = Command(subjects.WARMPOOL_DELETE, WarmPoolRef, WarmPool, subjects.WARMPOOL_QUEUE)
WARMPOOL_TEMPLATE_POOLS = Command(
    subjects.WARMPOOL_TEMPLATE_POOLS, TemplatePoolsQuery, TemplatePools, subjects.WARMPOOL_QUEUE
)
WARMPOOL_SNAPSHOT_POOLS = Command(
    subjects.WARMPOOL_SNAPSHOT_POOLS, SnapshotPoolsQuery, SnapshotPools, subjects.WARMPOOL_QUEUE
)

EXEC_RUN = Command(subjects.EXEC_RUN, RunExecution, ExecutionResult, subjects.EXEC_QUEUE)
EXEC_START = Command(subjects.EXEC_START, StartExecution, ExecutionAccepted, subjects.EXEC_QUEUE)
EXEC_CANCEL = Broadcast(subjects.EXEC_CANCEL, CancelExecution)
EXEC_STDIN = Broadcast(subjects.EXEC_STDIN, ExecutionStdin)
# sandbox-svc, as a sandbox starts running: how to reach its agent, so every exec-svc
# instance connects before the first call and that call needs no `SANDBOX_RESOLVE`.
EXEC_PREPARE = Broadcast(subjects.EXEC_PREPARE, ResolvedSandbox)
EXEC_FILES_LIST = Command(subjects.EXEC_FILES_LIST, ListFiles, FileListing, subjects.EXEC_QUEUE)
EXEC_FILES_DELETE = Command(
    subjects.EXEC_FILES_DELETE, DeleteFile, FileDeleted, subjects.EXEC_QUEUE
)
EXEC_FILES_UPLOAD = Command(
    subjects.EXEC_FILES_UPLOAD, OpenUpload, TransferOpened, subjects.EXEC_QUEUE
)
EXEC_FILES_DOWNLOAD = Command(
    subjects.EXEC_FILES_DOWNLOAD, OpenDownload, TransferOpened, subjects.EXEC_QUEUE
)
EXEC_PACKAGES_INSTALL = Command(
    subjects.EXEC_PACKAGES_INSTALL, InstallPackages, ExecutionResult, subjects.EXEC_QUEUE
)
EXEC_PACKAGES_START = Command(
    subjects.EXEC_PACKAGES_START, InstallPackages, ExecutionAccepted, subjects.EXEC_QUEUE
)
EXEC_TEMPLATE_BUILD = Command(
    subjects.EXEC_TEMPLATE_BUILD, BuildTemplate, ExecutionAccepted, subjects.EXEC_QUEUE
)

AUDIT_QUERY = Command(subjects.AUDIT_QUERY, AuditQuery, AuditPage, subjects.AUDIT_QUEUE)

TERM_OPEN = Command(subjects.TERM_OPEN, OpenTerminal, TerminalOpened, subjects.EXEC_QUEUE)


def terminal_control(
    sandbox_id: str, terminal_id: str
) -> Command[TerminalControl, TerminalAttached]:
    """Requests to one terminal, answered by the exec-svc instance that owns it."""
    return Command(
        subjects.terminal_control(sandbox_id, terminal_id), TerminalControl, TerminalAttached
    )
