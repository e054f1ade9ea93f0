import json
import os
import random
import re
import string
from pathlib import Path

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

import llmsafespace.contracts as contracts
from llmsafespace.contracts import (
    HTTP_STATUS,
    Caller,
    CreateSandboxRequest,
    ErrorCode,
    ExecuteRequest,
    Role,
    ServiceError,
    new_execution_id,
    new_sandbox_id,
    new_terminal_id,
    quantity_bytes,
    subjects,
)
from llmsafespace.contracts.ids import EXECUTION_ID_PATTERN
from llmsafespace.contracts.terminal import TERMINAL_ID_PATTERN

SNAPSHOT = Path(__file__).with_name("schema_snapshot.json")


def _schemas() -> dict[str, object]:
    return {
        name: value.model_json_schema(by_alias=True)
        for name, value in sorted(vars(contracts).items())
        if isinstance(value, type) and issubclass(value, BaseModel)
    }


def test_public_names_are_sorted_and_exist() -> None:
    assert contracts.__all__ == sorted(contracts.__all__)
    for name in contracts.__all__:
        assert hasattr(contracts, name)


def test_schemas_match_the_snapshot() -> None:
    """A failure here means a contract changed shape. Contracts change additively only;
    regenerate with UPDATE_SCHEMA_SNAPSHOT=1 once the change is deliberate."""
    current = _schemas()
    if os.environ.get("UPDATE_SCHEMA_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    assert json.loads(SNAPSHOT.read_text()) == json.loads(json.dumps(current))


def test_every_error_code_has_an_http_status() -> None:
    assert set(HTTP_STATUS) == set(ErrorCode)


def test_generated_ids_fit_inside_subjects() -> None:
    for identifier in (new_sandbox_id(), new_execution_id()):
        assert not set(identifier) & set(".*> ")
        assert subjects.exec_event(new_sandbox_id(), identifier, "started").count(".") == 5


def test_generated_ids_use_every_character_in_every_place() -> None:
    """`random_token` writes one random number in base 36: no place favours a digit."""
    draws = [new_execution_id().removeprefix("exec-") for _ in range(2000)]
    assert all(re.fullmatch(EXECUTION_ID_PATTERN, f"exec-{token}") for token in draws)
    for place in range(16):
        assert {token[place] for token in draws} == set(string.ascii_lowercase + string.digits)
    assert re.fullmatch(TERMINAL_ID_PATTERN, new_terminal_id())


def test_an_id_is_one_draw_from_the_os(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not one per character: each is a system call, on every execution's path."""
    draws: list[int] = []

    def urandom(size: int) -> bytes:
        draws.append(size)
        return os.urandom(size)

    monkeypatch.setattr(random, "_urandom", urandom)
    for _ in range(100):
        new_execution_id()
    assert len(draws) < 200  # 100 draws, and a redraw when one falls past 36**16


def test_create_request_defaults_and_camel_case() -> None:
    request = CreateSandboxRequest.model_validate({"useWarmPool": False})
    assert request.runtime == "python:3.11"
    assert request.timeout == 300
    assert request.use_warm_pool is False
    assert request.wire()["securityLevel"] == "standard"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": 86401}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
        ({"resources": {"memory": "lots"}}, "resources.memory"),
        ({"env": {"1BAD": "x"}}, "env"),
        ({"metadata": {str(i): "v" for i in range(65)}}, "metadata"),
        ({"runtme": "python:3.11"}, "runtme"),
    ],
)
def test_create_request_rejects_bad_fields(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CreateSandboxRequest.model_validate(body)
    locations = {".".join(str(part) for part in error["loc"]) for error in caught.value.errors()}
    assert field in locations


@pytest.mark.parametrize(
    "body",
    [
        {"type": "code"},
        {"type": "lisp", "content": "x"},
        {"type": "code", "content": ""},
        {"type": "code", "content": "   "},
        {"type": "code", "content": "x", "timeout": -1},
        {"type": "code", "content": "x" * (512 * 1024 + 1)},
    ],
)
def test_execute_request_rejects_bad_input(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ExecuteRequest.model_validate(body)


def test_quantities_convert_to_bytes() -> None:
    assert quantity_bytes("512Mi") == 512 * 2**20
    assert quantity_bytes("1G") == 10**9
    assert quantity_bytes("100") == 100


def test_service_error_round_trips_through_its_envelope() -> None:
    error = ServiceError(ErrorCode.NOT_FOUND, "gone", {"id": "sb-x"})
    again = ServiceError.from_envelope(error.envelope())
    assert (again.code, again.message, again.details, again.http_status) == (
        ErrorCode.NOT_FOUND,
        "gone",
        {"id": "sb-x"},
        404,
    )


def test_only_admins_and_owners_may_access() -> None:
    user = Caller(user_id="usr-aaaaaaaaaaaa", role=Role.USER)
    admin = Caller(user_id="usr-bbbbbbbbbbbb", role=Role.ADMIN)
    assert user.can_access("usr-aaaaaaaaaaaa")
    assert not user.can_access("usr-cccccccccccc")
    assert admin.can_access("usr-cccccccccccc")


@pytest.mark.parametrize(
    "execution_id",
    ["exec-1", "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b", "42", "run_7", "A" * 64],
)
def test_a_client_may_choose_any_subject_safe_execution_id(execution_id: str) -> None:
    """Issue 14 item 2: UUIDs and counters, not only `exec-…`, for execute and cancel."""
    caller = Caller(user_id="usr-aaaaaaaaaaaa", role=Role.USER)
    request = {"type": "code", "content": "1"}
    for contract in (contracts.RunExecution, contracts.CancelExecution):
        parsed = contract.model_validate(
            {
                "caller": caller.model_dump(by_alias=True),
                "sandboxId": "sb-aaaaaaaaaaaa",
                "executionId": execution_id,
                **({"request": request} if contract is contracts.RunExecution else {}),
            }
        )
        assert parsed.execution_id == execution_id


@pytest.mark.parametrize("execution_id", ["", "a.b", "a*", "a>", "a b", "x\n", "A" * 65, "é"])
def test_execution_ids_stay_out_of_subject_syntax(execution_id: str) -> None:
    with pytest.raises(ValidationError):
        contracts.CancelExecution.model_validate(
            {
                "caller": {"userId": "usr-aaaaaaaaaaaa", "role": "user"},
                "sandboxId": "sb-aaaaaaaaaaaa",
                "executionId": execution_id,
            }
        )


def test_the_server_still_names_its_own_executions_exec() -> None:
    assert new_execution_id().startswith("exec-")


def test_a_warm_pool_cannot_take_a_name_another_route_has() -> None:
    """Issue 14 item 1: a pool named `status` was made, then `GET /warmpools/status` (the
    all-pools status route) hid it for good."""
    with pytest.raises(ValidationError) as raised:
        contracts.WarmPoolSpec.model_validate({"name": "status"})
    assert [error["loc"] for error in raised.value.errors()] == [("name",)]
    assert contracts.WarmPoolSpec.model_validate({"name": "statuses"}).name == "statuses"


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ({"type": "execution_start", "executionId": "e-1", "timestamp": 1}, "ServerExecutionStart"),
        (
            {
                "type": "output",
                "executionId": "e-1",
                "seq": 2,
                "stream": "stdout",
                "content": "1\n",
                "timestamp": 2,
            },
            "ServerOutput",
        ),
        (
            {
                "type": "execution_cancelled",
                "executionId": "e-1",
                "seq": 3,
                "timestamp": 3,
                "status": "cancelled",
                "exitCode": -15,
                "outputTruncated": False,
                "endedBy": "cancelled",
                "startedAt": "2026-01-01T00:00:00Z",
                "completedAt": "2026-01-01T00:00:01Z",
                "durationMs": 1000.0,
            },
            "ServerExecutionCancelled",
        ),
        (
            {"type": "error", "code": "invalid_message", "message": "no", "timestamp": 3},
            "ServerError",
        ),
        ({"type": "pong", "timestamp": 4}, "ServerPong"),
    ],
)
def test_server_messages_are_told_apart_by_type_and_keep_their_wire_form(
    message: dict[str, object], kind: str
) -> None:
    parsed = TypeAdapter(contracts.ServerMessage).validate_python(message)
    assert type(parsed).__name__ == kind
    assert parsed.model_dump(mode="json", by_alias=True, exclude_none=True) == message


def test_a_field_the_client_left_out_is_still_unset_after_the_bus() -> None:
    """A service asks whether a create named its runtime (a template's is taken when it did
    not) or gave egress rules (refused without `enabled`): what travels on the bus must
    leave those unset, while a reply or a stored row still writes every field."""
    sent = CreateSandboxRequest.model_validate({"networkAccess": {"enabled": False}})
    received = CreateSandboxRequest.model_validate_json(
        sent.model_dump_json(by_alias=True, context=contracts.BUS)
    )
    assert "runtime" not in received.model_fields_set
    assert received.runtime == "python:3.11"
    assert received.network_access is not None
    assert "egress" not in received.network_access.model_fields_set
    named = CreateSandboxRequest.model_validate({"runtime": "node:20"})
    again = CreateSandboxRequest.model_validate_json(
        named.model_dump_json(by_alias=True, context=contracts.BUS)
    )
    assert "runtime" in again.model_fields_set
    assert json.loads(sent.model_dump_json(by_alias=True))["runtime"] == "python:3.11"
    assert "runtime" in CreateSandboxRequest.model_json_schema(mode="serialization")["properties"]


@pytest.mark.parametrize("path", ["/workspace/a.txt/", "/workspace/newdir//", "/tmp/a/.", "/tmp/"])
def test_a_file_path_with_a_trailing_slash_is_refused_naming_it(path: str) -> None:
    """Dropped, the slash made `a.txt/` read a.txt, and `newdir/` write a file newdir."""
    with pytest.raises(ServiceError) as refused:
        contracts.check_path(path)
    assert refused.value.code is ErrorCode.INVALID_REQUEST
    assert path in refused.value.message


def test_a_directorys_path_may_end_with_a_slash() -> None:
    assert contracts.check_path("/workspace/dir/", directory=True) == "/workspace/dir"
    assert contracts.check_path("/workspace/", directory=True) == "/workspace"
    assert contracts.check_path("/workspace//dir/./a.txt") == "/workspace/dir/a.txt"
    with pytest.raises(ServiceError) as outside:
        contracts.check_path("/etc/", directory=True)
    assert outside.value.code is ErrorCode.INVALID_PATH
