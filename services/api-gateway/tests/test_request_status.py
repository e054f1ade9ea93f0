"""The status a request is logged and counted with is what its client got: 101 for an
accepted WebSocket, the refusal's status for a refused one, 499 for a client that went
away before any response, 500 only when the app failed to answer."""

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from prometheus_client import REGISTRY
from starlette.types import Message, Receive, Scope, Send
from structlog.testing import capture_logs

from llmsafespace.gateway.observability import Observability

App = Callable[[Scope, Receive, Send], Awaitable[None]]


async def accepted_then_closed(scope: Scope, receive: Receive, send: Send) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "hello"})
    assert (await receive())["type"] == "websocket.disconnect"


async def refused_with_404(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "websocket.http.response.start", "status": 404, "headers": []})
    await send({"type": "websocket.http.response.body", "body": b"{}"})


async def closed_before_accept(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "websocket.close", "code": 1008})


async def left_by_its_client(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body, then waits for the client, which leaves: nothing is answered."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def returns_without_answering(scope: Scope, receive: Receive, send: Send) -> None:
    return None


async def answered_204(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def observed(app: App, kind: str, path: str) -> tuple[int, float]:
    """The logged status of one request to `app`, and how much its counter grew."""
    incoming: list[Message] = (
        [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
        if kind == "websocket"
        else [{"type": "http.request", "body": b""}, {"type": "http.disconnect"}]
    )

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        pass

    scope: Scope = {"type": kind, "path": path, "headers": [], "root_path": ""}
    if kind == "http":
        scope["method"] = "POST"
    method = scope.get("method", "GET")
    labels = {"method": method, "endpoint": "unmatched"}
    before = {
        status: REGISTRY.get_sample_value("api_requests_total", {**labels, "status": status})
        for status in ("101", "204", "403", "404", "499", "500")
    }
    with capture_logs() as logs:
        await Observability(app)(scope, receive, send)
    [entry] = [entry for entry in logs if entry["event"] == "request"]
    status = entry["status"]
    after = REGISTRY.get_sample_value("api_requests_total", {**labels, "status": str(status)})
    return status, (after or 0) - (before[str(status)] or 0)


@pytest.mark.parametrize(
    ("app", "kind", "expected"),
    [
        (accepted_then_closed, "websocket", 101),
        (refused_with_404, "websocket", 404),
        (closed_before_accept, "websocket", 403),
        (left_by_its_client, "http", 499),
        (returns_without_answering, "http", 500),
        (answered_204, "http", 204),
    ],
)
async def test_the_status_is_what_the_client_got(app: App, kind: str, expected: int) -> None:
    assert await observed(app, kind, "/x") == (expected, 1.0)


async def test_a_cancelled_request_without_an_answer_is_499() -> None:
    async def cancelled(scope: Scope, receive: Receive, send: Send) -> None:
        raise asyncio.CancelledError

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        pass

    scope: Scope = {"type": "http", "method": "POST", "path": "/x", "headers": []}
    with capture_logs() as logs, pytest.raises(asyncio.CancelledError):
        await Observability(cancelled)(scope, receive, send)
    assert [entry["status"] for entry in logs if entry["event"] == "request"] == [499]
