"""Admitting a WebSocket (`/stream`, `/terminal`) before its upgrade: the origin, the
credential (header or `?token=`) and a running sandbox the caller may use."""

from typing import Any

from starlette.websockets import WebSocket

from llmsafespace.contracts import ErrorCode, Sandbox, SandboxStatus, ServiceError, commands

from .auth import HeldCredential, bearer_token, identify
from .origins import admit_origin
from .paths import sandbox_ref
from .state import state_of

CLOSE_UNAUTHORIZED = 4401  # the socket's credential was revoked or expired


async def admit_socket(websocket: WebSocket) -> tuple[HeldCredential, Sandbox]:
    """Authenticate and authorise before the upgrade; raises `ServiceError`. A paused
    sandbox is 409 `sandbox_paused`, or resumed first if it was created with `autoResume`."""
    state = state_of(websocket)
    admit_origin(websocket, state["settings"].allowed_origins)
    credential = bearer_token(websocket) or websocket.query_params.get("token")
    identity = await identify(websocket, credential)
    assert credential is not None  # identify refuses none
    ref = sandbox_ref(websocket, identity.caller)
    bus = state["bus"]
    sandbox = await bus.request(commands.SANDBOX_GET, ref)
    if sandbox.status is SandboxStatus.PAUSED:  # as every other call on it
        if not sandbox.auto_resume:
            raise ServiceError(
                ErrorCode.SANDBOX_PAUSED,
                f"sandbox {ref.sandbox_id} is paused: resume it first",
                {"status": SandboxStatus.PAUSED},
            )
        timeout = state["settings"].workspace_timeout  # a resume may move the workspace
        sandbox = await bus.request(commands.SANDBOX_RESUME, ref, timeout=timeout)
    if sandbox.status is not SandboxStatus.RUNNING:
        raise ServiceError(
            ErrorCode.SANDBOX_NOT_RUNNING,
            f"sandbox {ref.sandbox_id} is {sandbox.status}",
            {"status": sandbox.status},
        )
    return HeldCredential(state["accounts"], state["limiter"], credential, identity), sandbox


def frame_problem(data: Any, kinds: tuple[str, ...]) -> tuple[str, str] | None:
    """The rule both sockets apply to a decoded frame before reading its body, as the
    error `(code, message)` to answer (None: a known type): not an object or no string
    `type` is `invalid_message` (malformed); a string type the socket does not know is
    `unknown_message_type` (well-formed, perhaps from a newer client)."""
    names = ", ".join(kinds)
    if not isinstance(data, dict):
        return "invalid_message", f"messages must be JSON objects of {names}"
    kind = data.get("type")
    if not isinstance(kind, str):
        return "invalid_message", f"a message needs a string type: {names}"
    if kind not in kinds:
        return "unknown_message_type", f"unknown type {kind[:64]!r}; use {names}"
    return None
