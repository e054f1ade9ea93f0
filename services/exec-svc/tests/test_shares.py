"""Each user's share of a command's workers: counted per user, refused past the limit
with `rate_limited` (admins exempt), given back once; and declared on every command a
user's request becomes."""

from typing import Any

import pytest

from llmsafespace.contracts import (
    Caller,
    ErrorCode,
    ExecuteRequest,
    ExecutionType,
    Role,
    RunExecution,
    ServiceError,
    commands,
)
from llmsafespace.exec_svc.handlers import (
    create_build_router,
    create_router,
    create_terminal_router,
)
from llmsafespace.exec_svc.shares import Shares

ALICE = Caller(user_id="usr-aaaaaaaaaaaa", role=Role.USER)
BOB = Caller(user_id="usr-bbbbbbbbbbbb", role=Role.USER)
ADMIN = Caller(user_id="usr-cccccccccccc", role=Role.ADMIN)
ABSENT: Any = None  # what the routers' handlers would call: none is called here


def _run(caller: Caller) -> RunExecution:
    request = ExecuteRequest(type=ExecutionType.COMMAND, content="sleep 150")
    return RunExecution(
        caller=caller, sandbox_id="sb-aaaaaaaaaaaa", execution_id="exec-1", request=request
    )


def test_a_user_past_the_limit_is_refused_while_others_and_admins_are_not() -> None:
    shares = Shares(2, "executions are running")
    alices = [shares.admit(_run(ALICE)) for _ in range(2)]
    with pytest.raises(ServiceError) as refused:
        shares.admit(_run(ALICE))
    assert refused.value.code is ErrorCode.RATE_LIMITED
    assert refused.value.http_status == 429
    assert refused.value.details == {"retryAfter": 1, "limit": 2}
    assert refused.value.message == (
        "too many of your executions are running at once on this exec-svc instance"
        " (at most 2): retry when one has ended"
    )
    bobs = shares.admit(_run(BOB))
    admins = [shares.admit(_run(ADMIN)) for _ in range(5)]
    assert (shares.held(ALICE.user_id), shares.held(BOB.user_id)) == (2, 1)
    assert shares.held(ADMIN.user_id) == 0
    for release in (*alices, bobs, *admins):
        release()
    alices[0]()  # a second release gives nothing back twice
    assert (shares.held(ALICE.user_id), shares.held(BOB.user_id)) == (0, 0)
    shares.admit(_run(ALICE))


def test_every_command_a_user_sends_has_a_share_and_builds_have_none() -> None:
    """A template build comes from sandbox-svc, one per template being created."""
    router = create_router(ABSENT, ABSENT, ABSENT, ABSENT, 8, per_user=2)
    terminals = create_terminal_router(ABSENT, 8, per_user=2)
    answers = [*router.answers, *terminals.answers]
    assert {answer.command.subject for answer in answers} == {
        command.subject
        for command in (
            commands.EXEC_RUN,
            commands.EXEC_START,
            commands.EXEC_FILES_LIST,
            commands.EXEC_FILES_DELETE,
            commands.EXEC_FILES_UPLOAD,
            commands.EXEC_FILES_DOWNLOAD,
            commands.EXEC_PACKAGES_INSTALL,
            commands.EXEC_PACKAGES_START,
            commands.TERM_OPEN,
        )
    }
    assert all(answer.admit is not None for answer in answers)
    assert [answer.admit for answer in create_build_router(ABSENT, 8).answers] == [None]
    run = next(answer for answer in answers if answer.command is commands.EXEC_RUN)
    assert run.admit is not None
    releases = [run.admit(_run(ALICE)) for _ in range(2)]
    with pytest.raises(ServiceError):
        run.admit(_run(ALICE))
    start = next(answer for answer in answers if answer.command is commands.EXEC_START)
    assert start.admit is not None
    start.admit(_run(ALICE))  # each command's workers are shared out on their own
    for release in releases:
        release()
