"""Bad client frames on `/terminal` are answered with an error (`invalid_message`, or
`unknown_message_type` for a type it does not know, as on `/stream`) and the socket
keeps serving: decoded with `/stream`'s `decode_json`, a 4300-digit integer or a
lone surrogate is a bad frame like any other (they dropped the socket before)."""

from types import SimpleNamespace
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from llmsafespace.contracts import Caller
from llmsafespace.gateway.terminal import TerminalSession

HELD: Any = SimpleNamespace(identity=SimpleNamespace(caller=Caller(user_id="usr-abcdefabcdef")))
NO_BUS: Any = None  # bad frames and pings never reach the bus


async def endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    session = TerminalSession(websocket, NO_BUS, HELD, "sb-abcdefabcdef", "term-abcdefabcdef")
    await session._receive()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ('{"type": "ping", "n": ' + "9" * 5000 + "}", "invalid_message"),
        ('{"type": "input", "data": "\\ud800"}', "invalid_message"),
        ('{"type": "input", "data": "' + "x" * 20000 + '"}', "invalid_message"),
        ('{"type": "resize", "cols": true, "rows": 24}', "invalid_message"),
        ("[1, 2]", "invalid_message"),
        ("not json", "invalid_message"),
        (b"\xff\x00 binary", "invalid_message"),
        ('{"data": "ls"}', "invalid_message"),
        ('{"type": null}', "invalid_message"),
        ('{"type": "launch"}', "unknown_message_type"),  # as `/stream` answers it
    ],
)
def test_a_bad_frame_gets_an_error_and_the_socket_keeps_serving(
    frame: str | bytes, code: str
) -> None:
    app = Starlette(routes=[WebSocketRoute("/terminal", endpoint)])
    with TestClient(app).websocket_connect("/terminal") as socket:
        if isinstance(frame, bytes):
            socket.send_bytes(frame)
        else:
            socket.send_text(frame)
        error = socket.receive_json()
        assert (error["type"], error["code"]) == ("error", code), error
        assert set(error) == {"type", "code", "message"}
        socket.send_json({"type": "ping"})
        assert socket.receive_json() == {"type": "pong"}
