"""Who may publish and subscribe what on NATS: one user per service.

Each service logs in to NATS as its own user (named after the service) and may only
publish and subscribe the subjects below. The table is derived from `commands` and
`subjects`: a service subscribes the commands whose queue group is its name (plus the
broadcasts and per-use subjects it serves), and publishes the commands it calls, its own
events and replies. The embedded devstack's nats-server config and the Helm chart's
(`charts/llmsafespace/files/nats-permissions.json`, checked against `permissions()`)
are both written from it.

Each service's request inboxes are its own (`inbox_prefix(service)`): a service may
subscribe only to replies addressed to it, so no service reads another's replies.
JetStream API subjects are granted per stream: the services that keep the streams may
create and update them; a stream's readers (the gateway the output, audit-svc the
events) may also make consumers on it, fetch, acknowledge and answer flow control.
"""

import json
from dataclasses import dataclass
from typing import Any

from . import commands, subjects
from .commands import Broadcast, Command

GATEWAY = "api-gateway"
# The services, each also its NATS user's name (a queue group is named for its service).
SERVICES = (
    GATEWAY,
    subjects.SANDBOX_QUEUE,
    subjects.WARMPOOL_QUEUE,
    subjects.EXEC_QUEUE,
    subjects.AUDIT_QUEUE,
)
INBOX = "_INBOX"
ANY_INBOX = f"{INBOX}.>"
STREAMS = (subjects.EVENTS_STREAM, subjects.OUTPUT_STREAM)

AnyCommand = Command[Any, Any] | Broadcast[Any]


@dataclass(frozen=True)
class BusUser:
    """One service's NATS user and what it may publish and subscribe."""

    name: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def inbox_prefix(service: str) -> str:
    """The prefix of the service's request inboxes (nats-py's `inbox_prefix`)."""
    return f"{INBOX}.{service}"


def every_command() -> tuple[AnyCommand, ...]:
    """Every command and broadcast `contracts.commands` declares."""
    return tuple(
        value for value in vars(commands).values() if isinstance(value, Command | Broadcast)
    )


def served_by(service: str) -> tuple[str, ...]:
    """The command subjects answered in the service's queue group."""
    return tuple(
        each.subject
        for each in every_command()
        if isinstance(each, Command) and each.queue == service
    )


# The commands (and broadcasts) each service sends; what it answers follows from queues.
CALLS: dict[str, tuple[AnyCommand, ...]] = {
    GATEWAY: (
        commands.SANDBOX_CREATE, commands.SANDBOX_GET, commands.SANDBOX_LIST,
        commands.SANDBOX_TERMINATE, commands.SANDBOX_STATUS, commands.SANDBOX_TIMEOUT,
        commands.SANDBOX_CATALOG, commands.SANDBOX_PAUSE, commands.SANDBOX_RESUME,
        commands.SNAPSHOT_CREATE, commands.SNAPSHOT_GET, commands.SNAPSHOT_LIST,
        commands.SNAPSHOT_DELETE,
        commands.TEMPLATE_CREATE, commands.TEMPLATE_GET, commands.TEMPLATE_LIST,
        commands.TEMPLATE_DELETE,
        commands.WARMPOOL_CREATE, commands.WARMPOOL_GET, commands.WARMPOOL_LIST,
        commands.WARMPOOL_UPDATE, commands.WARMPOOL_DELETE,
        commands.EXEC_RUN, commands.EXEC_START, commands.EXEC_CANCEL, commands.EXEC_STDIN,
        commands.EXEC_FILES_LIST, commands.EXEC_FILES_DELETE, commands.EXEC_FILES_UPLOAD,
        commands.EXEC_FILES_DOWNLOAD, commands.EXEC_PACKAGES_INSTALL,
        commands.EXEC_PACKAGES_START, commands.TERM_OPEN,
        commands.AUDIT_QUERY,
    ),
    subjects.SANDBOX_QUEUE: (
        commands.EXEC_TEMPLATE_BUILD, commands.WARMPOOL_CLAIM, commands.WARMPOOL_RELEASE,
        commands.WARMPOOL_TEMPLATE_POOLS, commands.WARMPOOL_SNAPSHOT_POOLS,
        commands.EXEC_PREPARE,
    ),
    subjects.WARMPOOL_QUEUE: (
        commands.SANDBOX_RESERVE, commands.TEMPLATE_RESOLVE, commands.SNAPSHOT_GET,
        commands.SNAPSHOT_RESTORE,
    ),
    subjects.EXEC_QUEUE: (commands.SANDBOX_RESOLVE, commands.TEMPLATE_BUILT),
    subjects.AUDIT_QUEUE: (),
}  # fmt: skip

_EVENTS = f"{subjects.PREFIX}.evt"
_TERMINAL_CONTROL = subjects.terminal_control("*", "*")
_TERMINAL_OUTPUT = subjects.terminal_output("*", "*")
_TRANSFERS = subjects.transfer("*")
_OUTPUT = subjects.output("*", "*")


def keeps_streams() -> tuple[str, ...]:
    """Create, update and inspect the streams (every service but the gateway ensures
    them at start)."""
    verbs = ("CREATE", "UPDATE", "INFO")
    return tuple(f"$JS.API.STREAM.{verb}.{stream}" for stream in STREAMS for verb in verbs)


def reads_stream(stream: str) -> tuple[str, ...]:
    """Make consumers on one stream, fetch, get messages, acknowledge and answer flow
    control (and find the stream by subject)."""
    return (
        "$JS.API.STREAM.NAMES",
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        f"$JS.API.CONSUMER.*.{stream}",
        f"$JS.API.CONSUMER.*.{stream}.>",
        f"$JS.API.CONSUMER.*.*.{stream}.>",
        f"$JS.ACK.{stream}.>",
        f"$JS.FC.{stream}.>",
    )


def keeps_bucket(bucket: str) -> tuple[str, ...]:
    """Create, read and write one key-value bucket (a stream `KV_<bucket>`)."""
    stream = f"KV_{bucket}"
    verbs = ("CREATE", "UPDATE", "INFO")
    return (
        f"$KV.{bucket}.>",
        *(f"$JS.API.STREAM.{verb}.{stream}" for verb in verbs),
        *reads_stream(stream),
    )


def _calls(service: str) -> tuple[str, ...]:
    return tuple(each.subject for each in CALLS[service])


def _user(service: str, publish: tuple[str, ...], subscribe: tuple[str, ...]) -> BusUser:
    own = (inbox_prefix(service) + ".>",)
    return BusUser(service, publish=_calls(service) + publish, subscribe=own + subscribe)


def users() -> tuple[BusUser, ...]:
    """Every service's NATS user."""
    sandbox, warmpool, exec_, audit = SERVICES[1:]
    return (
        _user(
            GATEWAY,
            (_TERMINAL_CONTROL, _TRANSFERS, *reads_stream(subjects.OUTPUT_STREAM)),
            (_OUTPUT, _TERMINAL_OUTPUT),
        ),
        _user(
            sandbox,
            (ANY_INBOX, f"{_EVENTS}.sandbox.>", *keeps_streams()),
            served_by(sandbox),
        ),
        _user(
            warmpool,
            (ANY_INBOX, f"{_EVENTS}.warmpool.>", *keeps_streams()),
            served_by(warmpool),
        ),
        _user(
            exec_,
            (
                ANY_INBOX,
                f"{_EVENTS}.exec.>",
                _OUTPUT,
                _TERMINAL_OUTPUT,
                *keeps_streams(),
                *keeps_bucket(subjects.RUNNING_BUCKET),
                f"$JS.API.STREAM.MSG.GET.{subjects.OUTPUT_STREAM}",  # a lost one's last
            ),
            (
                *served_by(exec_),
                commands.EXEC_CANCEL.subject,
                commands.EXEC_STDIN.subject,
                commands.EXEC_PREPARE.subject,
                _TERMINAL_CONTROL,
                _TRANSFERS,
                subjects.SANDBOX_EVENTS,
            ),
        ),
        _user(
            audit,
            (ANY_INBOX, *keeps_streams(), *reads_stream(subjects.EVENTS_STREAM)),
            served_by(audit),
        ),
    )


def permissions() -> dict[str, dict[str, dict[str, list[str]]]]:
    """Each user's permissions in nats-server's configuration shape
    (`{"publish": {"allow": [...]}, "subscribe": {"allow": [...]}}`)."""
    return {
        user.name: {
            "publish": {"allow": list(user.publish)},
            "subscribe": {"allow": list(user.subscribe)},
        }
        for user in users()
    }


if __name__ == "__main__":  # writes charts/llmsafespace/files/nats-permissions.json
    print(json.dumps(permissions(), indent=2))
