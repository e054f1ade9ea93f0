"""Every command subject has exactly one descriptor, and descriptors name their queue."""

from typing import Any

from llmsafespace.contracts import Broadcast, Command, commands, subjects


def _descriptors() -> list[Command[Any, Any] | Broadcast[Any]]:
    return [value for value in vars(commands).values() if isinstance(value, Command | Broadcast)]


def test_every_command_subject_has_exactly_one_descriptor() -> None:
    spelled = {
        value
        for name, value in vars(subjects).items()
        if name.isupper() and isinstance(value, str) and (".cmd." in value or ".term." in value)
    }
    described = [descriptor.subject for descriptor in _descriptors()]
    assert sorted(described) == sorted(spelled)


def test_every_request_reply_command_is_answered_by_a_queue_group() -> None:
    queues = {subjects.SANDBOX_QUEUE, subjects.WARMPOOL_QUEUE, subjects.EXEC_QUEUE}
    queues.add(subjects.AUDIT_QUEUE)
    for descriptor in _descriptors():
        if isinstance(descriptor, Command):
            assert descriptor.queue in queues, descriptor.subject


def test_a_terminal_is_controlled_on_its_own_subject() -> None:
    command = commands.terminal_control("sb-1", "term-1")
    assert command.subject == subjects.terminal_control("sb-1", "term-1")
    assert command.queue == ""
