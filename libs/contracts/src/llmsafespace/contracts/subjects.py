"""Every NATS subject, stream and queue group name. Nothing else spells one out."""

from .events import ExecEventName, SandboxEventName, WarmPoolEventName

PREFIX = "llmsafespace"

# Commands (request/reply).
SANDBOX_CREATE = f"{PREFIX}.cmd.sandbox.create"
SANDBOX_GET = f"{PREFIX}.cmd.sandbox.get"
SANDBOX_LIST = f"{PREFIX}.cmd.sandbox.list"
SANDBOX_TERMINATE = f"{PREFIX}.cmd.sandbox.terminate"
SANDBOX_STATUS = f"{PREFIX}.cmd.sandbox.status"
SANDBOX_RESOLVE = f"{PREFIX}.cmd.sandbox.resolve"
SANDBOX_TIMEOUT = f"{PREFIX}.cmd.sandbox.timeout"
SANDBOX_CATALOG = f"{PREFIX}.cmd.sandbox.catalog"
SANDBOX_RESERVE = f"{PREFIX}.cmd.sandbox.reserve"
SANDBOX_PAUSE = f"{PREFIX}.cmd.sandbox.pause"
SANDBOX_RESUME = f"{PREFIX}.cmd.sandbox.resume"
SNAPSHOT_CREATE = f"{PREFIX}.cmd.snapshot.create"
SNAPSHOT_GET = f"{PREFIX}.cmd.snapshot.get"
SNAPSHOT_LIST = f"{PREFIX}.cmd.snapshot.list"
SNAPSHOT_DELETE = f"{PREFIX}.cmd.snapshot.delete"
SNAPSHOT_RESTORE = f"{PREFIX}.cmd.snapshot.restore"  # into a warm pool's runtime

WARMPOOL_CLAIM = f"{PREFIX}.cmd.warmpool.claim"
WARMPOOL_RELEASE = f"{PREFIX}.cmd.warmpool.release"
WARMPOOL_CREATE = f"{PREFIX}.cmd.warmpool.create"
WARMPOOL_GET = f"{PREFIX}.cmd.warmpool.get"
WARMPOOL_LIST = f"{PREFIX}.cmd.warmpool.list"
WARMPOOL_UPDATE = f"{PREFIX}.cmd.warmpool.update"
WARMPOOL_DELETE = f"{PREFIX}.cmd.warmpool.delete"

EXEC_RUN = f"{PREFIX}.cmd.exec.run"
EXEC_START = f"{PREFIX}.cmd.exec.start"
EXEC_CANCEL = f"{PREFIX}.cmd.exec.cancel"  # broadcast: no queue group
EXEC_STDIN = f"{PREFIX}.cmd.exec.stdin"  # broadcast: no queue group
EXEC_PREPARE = f"{PREFIX}.cmd.exec.prepare"  # broadcast: no queue group
EXEC_FILES_LIST = f"{PREFIX}.cmd.exec.files.list"
EXEC_FILES_DELETE = f"{PREFIX}.cmd.exec.files.delete"
EXEC_FILES_UPLOAD = f"{PREFIX}.cmd.exec.files.upload"
EXEC_FILES_DOWNLOAD = f"{PREFIX}.cmd.exec.files.download"
EXEC_PACKAGES_INSTALL = f"{PREFIX}.cmd.exec.packages.install"
EXEC_PACKAGES_START = f"{PREFIX}.cmd.exec.packages.start"

TEMPLATE_CREATE = f"{PREFIX}.cmd.template.create"
TEMPLATE_GET = f"{PREFIX}.cmd.template.get"
TEMPLATE_LIST = f"{PREFIX}.cmd.template.list"
TEMPLATE_DELETE = f"{PREFIX}.cmd.template.delete"
TEMPLATE_RESOLVE = f"{PREFIX}.cmd.template.resolve"  # a ready one, else 400 naming them
TEMPLATE_BUILT = f"{PREFIX}.cmd.template.built"  # exec-svc to sandbox-svc
WARMPOOL_TEMPLATE_POOLS = f"{PREFIX}.cmd.warmpool.template.pools"
WARMPOOL_SNAPSHOT_POOLS = f"{PREFIX}.cmd.warmpool.snapshot.pools"
EXEC_TEMPLATE_BUILD = f"{PREFIX}.cmd.exec.template.build"

AUDIT_QUERY = f"{PREFIX}.cmd.audit.query"

# Interactive terminals: opened on one exec-svc instance (queue group), then reached on
# per-terminal subjects (`terminal_control`, `terminal_output`).
TERM_OPEN = f"{PREFIX}.term.open"

# Queue groups: one member of each group handles each command.
SANDBOX_QUEUE = "sandbox-svc"
WARMPOOL_QUEUE = "warmpool-svc"
EXEC_QUEUE = "exec-svc"
AUDIT_QUEUE = "audit-svc"

# Events (JetStream stream EVENTS_STREAM).
EVENTS_STREAM = "LLMSAFESPACE_EVENTS"
EVENTS_ALL = f"{PREFIX}.evt.>"
SANDBOX_EVENTS = f"{PREFIX}.evt.sandbox.*.*"  # every sandbox's lifecycle events
AUDIT_CONSUMER = "audit-svc"  # the durable consumer every audit-svc replica shares

# Output of streamed executions (JetStream stream OUTPUT_STREAM, short retention).
OUTPUT_STREAM = "LLMSAFESPACE_OUTPUT"
OUTPUT_ALL = f"{PREFIX}.out.>"

# exec-svc's key-value bucket of executions running past their first moments, and of
# its instances being alive (exec_svc/inflight.py).
RUNNING_BUCKET = "llmsafespace-running"


def sandbox_event(sandbox_id: str, event: SandboxEventName) -> str:
    return f"{PREFIX}.evt.sandbox.{sandbox_id}.{event}"


def warmpool_event(pool: str, event: WarmPoolEventName) -> str:
    return f"{PREFIX}.evt.warmpool.{pool}.{event}"


def exec_event(sandbox_id: str, execution_id: str, event: ExecEventName) -> str:
    return f"{PREFIX}.evt.exec.{sandbox_id}.{execution_id}.{event}"


def transfer(transfer_id: str) -> str:
    """The subject of one file transfer, served by the exec-svc instance that opened it."""
    return f"{PREFIX}.xfer.{transfer_id}"


def output(sandbox_id: str, execution_id: str) -> str:
    return f"{PREFIX}.out.{sandbox_id}.{execution_id}"


def terminal_control(sandbox_id: str, terminal_id: str) -> str:
    """Requests to a terminal, answered by the exec-svc instance that owns it."""
    return f"{PREFIX}.term.ctl.{sandbox_id}.{terminal_id}"


def terminal_output(sandbox_id: str, terminal_id: str) -> str:
    """A terminal's output and exit, for every gateway replica attached to it."""
    return f"{PREFIX}.term.out.{sandbox_id}.{terminal_id}"
