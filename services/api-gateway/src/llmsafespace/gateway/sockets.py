"""Admitting a WebSocket (`/stream`, `/terminal`) before its upgrade: the origin, the
credential (header or `?token=`) and a running sandbox the caller may use."""

from starlette.websockets import WebSocket

from llmsafespace.contracts import ErrorCode, Sandbox, SandboxStatus, ServiceError, commands

from .auth import HeldCredential, bearer_token, identify
from .origins import admit_origin
from .paths import sandbox_ref
from .state import state_of

CLOSE_UNAUTHORIZED = 4401  # the socket's credential was revoked or expired


async def admit_socket(websocket: WebSocket) -> tuple[HeldCredential, Sandbox]:
    """Authenticate and authorise before the upgrade; raises `ServiceError`."""
    state = state_of(websocket)
    admit_origin(websocket, state["settings"].allowed_origins)
    credential = bearer_token(websocket) or websocket.query_params.get("token")
    identity = await identify(websocket, credential)
    assert credential is not None  # identify refuses none
    ref = sandbox_ref(websocket, identity.caller)
    sandbox = await state["bus"].request(commands.SANDBOX_GET, ref)
    if sandbox.status is not SandboxStatus.RUNNING:
        raise ServiceError(
            ErrorCode.SANDBOX_NOT_RUNNING, f"sandbox {ref.sandbox_id} is {sandbox.status}"
        )
    return HeldCredential(state["accounts"], state["limiter"], credential, identity), sandbox
