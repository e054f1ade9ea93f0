import json
from datetime import UTC, datetime

from llmsafespace.audit_svc.records import audit_event
from llmsafespace.contracts import AuditKind, subjects

WHEN = datetime(2025, 1, 1, tzinfo=UTC)
SANDBOX = "sb-abcdefabcdef"
EXECUTION = "exec-abcdef"


def test_a_sandbox_event_names_its_sandbox_owner_and_status() -> None:
    body = json.dumps({"id": SANDBOX, "ownerId": "usr-aaaaaaaaaaaa", "status": "running"})
    event = audit_event(subjects.sandbox_event(SANDBOX, "running"), body.encode(), 7, WHEN)
    assert (event.kind, event.event, event.sandbox_id) == (AuditKind.SANDBOX, "running", SANDBOX)
    assert (event.user_id, event.outcome, event.seq) == ("usr-aaaaaaaaaaaa", "running", 7)


def test_an_execution_event_names_its_execution_and_user() -> None:
    body = json.dumps({"userId": "usr-bbbbbbbbbbbb", "status": "completed", "exitCode": 0})
    subject = subjects.exec_event(SANDBOX, EXECUTION, "completed")
    event = audit_event(subject, body.encode(), 8, WHEN)
    assert (event.kind, event.sandbox_id, event.execution_id) == (
        AuditKind.EXEC,
        SANDBOX,
        EXECUTION,
    )
    assert (event.user_id, event.outcome) == ("usr-bbbbbbbbbbbb", "completed")


def test_a_pool_event_without_a_status_has_its_name_as_outcome() -> None:
    body = json.dumps({"pool": "py", "event": "claimed", "sandboxId": SANDBOX})
    event = audit_event(subjects.warmpool_event("py", "claimed"), body.encode(), 9, WHEN)
    assert (event.kind, event.sandbox_id, event.user_id, event.outcome) == (
        AuditKind.WARMPOOL,
        SANDBOX,
        None,
        "claimed",
    )


def test_a_payload_that_is_not_json_is_kept_raw() -> None:
    event = audit_event("llmsafespace.evt.other.thing.happened", b"\xff oops", 10, WHEN)
    assert event.kind is AuditKind.OTHER
    assert event.event == "happened"
    assert "raw" in event.payload


def test_the_caller_names_the_user_when_nothing_else_does() -> None:
    body = json.dumps({"caller": {"userId": "usr-cccccccccccc", "role": "user"}})
    event = audit_event(subjects.sandbox_event(SANDBOX, "failed"), body.encode(), 11, WHEN)
    assert event.user_id == "usr-cccccccccccc"
