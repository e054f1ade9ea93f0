"""Reading the sandbox a request's path names, for every route and socket under
`/sandboxes/{sandbox_id}`."""

import re

from starlette.requests import HTTPConnection

from llmsafespace.contracts import Caller, ErrorCode, SandboxRef, ServiceError
from llmsafespace.contracts.ids import SANDBOX_ID_PATTERN

_SANDBOX_ID = re.compile(SANDBOX_ID_PATTERN)


def sandbox_ref(connection: HTTPConnection, caller: Caller) -> SandboxRef:
    """The path's sandbox, on behalf of `caller`; an id that cannot exist is as unknown
    (404) as one that does not."""
    sandbox_id = connection.path_params["sandbox_id"]
    if not _SANDBOX_ID.fullmatch(sandbox_id):
        raise ServiceError(ErrorCode.NOT_FOUND, f"sandbox {sandbox_id[:64]} not found")
    return SandboxRef(caller=caller, sandbox_id=sandbox_id)
