"""`/stream` answers a bad frame with an `error` message stamped like every other server
message (`timestamp`, epoch ms), by the rule both sockets share: malformed is
`invalid_message`, a well-formed frame of an unknown type `unknown_message_type`."""

import asyncio
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


class _Ended:
    """A follower whose execution has already ended: it yields nothing more."""

    def __init__(self, execution_id: str) -> None:
        self.execution_id = execution_id
        self.closed = asyncio.Event()

    async def messages(self, after_seq: int, wait: float) -> AsyncIterator[Any]:
        for message in ():
            yield message

    async def close(self) -> None:
        self.closed.set()


async def test_a_session_forgets_each_relay_once_it_has_ended() -> None:
    """A socket may run executions for hours: it keeps only the relays still running."""
    websocket: Any = SimpleNamespace(state={"settings": SimpleNamespace(stream_grace=1.0)})
    session = Session(websocket, NO_BUS, NO_BUS, HELD, "sb-abcdefabcdef")
    followers = [_Ended(f"exec-{number}") for number in range(3)]
    for follower in followers:
        session._relay(follower, 0)  # type: ignore[arg-type]
    for follower in followers:
        await follower.closed.wait()
    await asyncio.sleep(0)  # the tasks' done callbacks run after them
    assert session._relays == {}
