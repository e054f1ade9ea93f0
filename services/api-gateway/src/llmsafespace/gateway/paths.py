"""Reading the ids a request's path or query names: the sandbox of every route and
socket under `/sandboxes/{sandbox_id}`, a snapshot, a terminal."""

import re

from starlette.requests import HTTPConnection

from llmsafespace.contracts import Caller, ErrorCode, SandboxRef, ServiceError
from llmsafespace.contracts.ids import SANDBOX_ID_PATTERN

_SANDBOX_ID = re.compile(SANDBOX_ID_PATTERN)


def known_id(value: str, pattern: re.Pattern[str], what: str) -> str:
    """`value` when all of it has the form of a `what` id; otherwise 404, since an id
    that cannot exist is as unknown as one that does not. All of it: `match` with a
    pattern ending in `$` also takes a trailing newline, which a subject or a contract
    then refuses (a 500)."""
    if not pattern.fullmatch(value):
        raise ServiceError(ErrorCode.NOT_FOUND, f"{what} {value[:64]} not found")
    return value


def sandbox_ref(connection: HTTPConnection, caller: Caller) -> SandboxRef:
    """The path's sandbox, on behalf of `caller`."""
    sandbox_id = known_id(connection.path_params["sandbox_id"], _SANDBOX_ID, "sandbox")
    return SandboxRef(caller=caller, sandbox_id=sandbox_id)
