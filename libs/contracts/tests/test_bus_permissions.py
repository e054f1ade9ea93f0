"""The NATS permission table covers every command, and grants nothing twice over."""

from llmsafespace.contracts import Broadcast, Command, commands, subjects
from llmsafespace.contracts.bus_permissions import (
    CALLS,
    GATEWAY,
    SERVICES,
    every_command,
    inbox_prefix,
    permissions,
    users,
)


def test_every_command_is_answered_by_one_service_and_called_by_another() -> None:
    table = {user.name: user for user in users()}
    assert set(table) == set(SERVICES) == set(CALLS)
    for command in every_command():
        listeners = [name for name, user in table.items() if command.subject in user.subscribe]
        callers = [name for name, user in table.items() if command.subject in user.publish]
        assert callers, f"nobody may send {command.subject}"
        assert all(command in CALLS[caller] for caller in callers), command.subject
        if isinstance(command, Command):
            assert listeners == [command.queue], (command.subject, listeners)
        else:
            assert isinstance(command, Broadcast)
            assert listeners == [subjects.EXEC_QUEUE], (command.subject, listeners)


def test_only_the_gateway_sends_what_users_ask_for() -> None:
    senders = {user.name for user in users() if subjects.SANDBOX_LIST in user.publish}
    assert senders == {GATEWAY}
    assert commands.SANDBOX_LIST in CALLS[GATEWAY]


def test_each_service_receives_replies_on_its_own_inboxes_only() -> None:
    for user in users():
        inboxes = [subject for subject in user.subscribe if subject.startswith("_INBOX")]
        assert inboxes == [inbox_prefix(user.name) + ".>"]


def test_the_stored_output_is_read_by_the_gateway_alone() -> None:
    output = f"$JS.API.DIRECT.GET.{subjects.OUTPUT_STREAM}"
    readers = [name for name, user in permissions().items() if output in user["publish"]["allow"]]
    assert readers == [GATEWAY]
