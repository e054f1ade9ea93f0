"""Every NATS subject, stream and queue group name. Nothing else spells one out."""

PREFIX = "llmsafespace"

# Commands (request/reply).
SANDBOX_CREATE = f"{PREFIX}.cmd.sandbox.create"
SANDBOX_GET = f"{PREFIX}.cmd.sandbox.get"
SANDBOX_LIST = f"{PREFIX}.cmd.sandbox.list"
SANDBOX_TERMINATE = f"{PREFIX}.cmd.sandbox.terminate"
SANDBOX_STATUS = f"{PREFIX}.cmd.sandbox.status"
SANDBOX_RESOLVE = f"{PREFIX}.cmd.sandbox.resolve"

WARMPOOL_CLAIM = f"{PREFIX}.cmd.warmpool.claim"

EXEC_RUN = f"{PREFIX}.cmd.exec.run"

# Queue groups: one member of each group handles each command.
SANDBOX_QUEUE = "sandbox-svc"
WARMPOOL_QUEUE = "warmpool-svc"
EXEC_QUEUE = "exec-svc"

# Events (JetStream stream EVENTS_STREAM).
EVENTS_STREAM = "LLMSAFESPACE_EVENTS"
EVENTS_ALL = f"{PREFIX}.evt.>"


def sandbox_event(sandbox_id: str, event: str) -> str:
    return f"{PREFIX}.evt.sandbox.{sandbox_id}.{event}"


def exec_event(sandbox_id: str, execution_id: str, event: str) -> str:
    return f"{PREFIX}.evt.exec.{sandbox_id}.{execution_id}.{event}"
