"""Ids in a path or a query: all of the value must have the id's form, or it is unknown.

`re.match` with a pattern ending in `$` also takes the value with a trailing newline
(`%0A` in the URL); the contract or the bus subject then refused it with a 500."""

import pytest
from starlette.requests import Request

from llmsafespace.contracts import Caller, ErrorCode, SandboxRef, ServiceError, SnapshotRef
from llmsafespace.gateway.paths import sandbox_ref
from llmsafespace.gateway.snapshots import _snapshot_ref

CALLER = Caller(user_id="usr-abcdefabcdef")
SANDBOX = "sb-abcdefabcdef"
SNAPSHOT = "snap-abcdefabcdef"


def _request(**path_params: str) -> Request:
    return Request({"type": "http", "path_params": path_params})


def test_whole_ids_are_the_callers_refs() -> None:
    assert sandbox_ref(_request(sandbox_id=SANDBOX), CALLER) == SandboxRef(
        caller=CALLER, sandbox_id=SANDBOX
    )
    assert _snapshot_ref(_request(snapshot_id=SNAPSHOT), CALLER) == SnapshotRef(
        caller=CALLER, snapshot_id=SNAPSHOT
    )


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "x\n"])
def test_an_id_with_a_trailing_newline_or_more_is_not_found(suffix: str) -> None:
    for read, params in [
        (sandbox_ref, {"sandbox_id": SANDBOX + suffix}),
        (_snapshot_ref, {"snapshot_id": SNAPSHOT + suffix}),
    ]:
        with pytest.raises(ServiceError) as raised:
            read(_request(**params), CALLER)
        assert raised.value.code is ErrorCode.NOT_FOUND
