"""`/stream` answers a bad frame with an `error` message stamped like every other server
message (`timestamp`, epoch ms), by the rule both sockets share: malformed is
`invalid_message`, a well-formed frame of an unknown type `unknown_message_type`."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from llmsafespace.contracts import Caller
from llmsafespace.gateway.stream import Session


async def _live() -> None:
    """The credential is still good (pings check it)."""


HELD: Any = SimpleNamespace(
    identity=SimpleNamespace(caller=Caller(user_id="usr-abcdefabcdef")), expires=None, use=_live
)
NO_BUS: Any = None  # bad frames and pings never reach the bus


async def endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    await Session(websocket, NO_BUS, NO_BUS, HELD, "sb-abcdefabcdef").serve()


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
    yield {"settings": SimpleNamespace(stream_grace=1.0)}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_message"),
        ("[1, 2]", "invalid_message"),
        ('{"executionId": "exec-1"}', "invalid_message"),
        ('{"type": 5}', "invalid_message"),
        ('{"type": "teleport"}', "unknown_message_type"),
        (b"\xff\x00 binary", "invalid_message"),
    ],
)
def test_a_bad_frame_gets_a_stamped_error_and_the_socket_keeps_serving(
    frame: str | bytes, code: str
) -> None:
    app = Starlette(routes=[WebSocketRoute("/stream", endpoint)], lifespan=lifespan)
    with TestClient(app) as client, client.websocket_connect("/stream") as socket:
        if isinstance(frame, bytes):
            socket.send_bytes(frame)
        else:
            socket.send_text(frame)
        error = socket.receive_json()
        assert (error["type"], error["code"]) == ("error", code), error
        assert isinstance(error["timestamp"], int)
        assert error["timestamp"] > 1_700_000_000_000  # epoch ms, not s
        socket.send_json({"type": "ping", "timestamp": 7})
        assert socket.receive_json() == {"type": "pong", "timestamp": 7}
