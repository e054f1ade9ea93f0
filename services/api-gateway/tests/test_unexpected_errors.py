"""An unexpected exception is answered with the envelope, and the connection stays open
for the client's next request (a 500 must not cost a keep-alive connection)."""

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llmsafespace.gateway.errors import EXCEPTION_HANDLERS, UnexpectedErrors


async def broken(_: Request) -> Response:
    raise RuntimeError("a bug")


async def fine(_: Request) -> Response:
    return JSONResponse({"ok": True})


@pytest.fixture
async def server() -> AsyncIterator[int]:
    app = Starlette(
        routes=[Route("/broken", broken), Route("/fine", fine)],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(UnexpectedErrors)],
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        running = uvicorn.Server(config)
        task = asyncio.create_task(running.serve(sockets=[sock]))
        yield port  # the socket listens already: connections wait for the server
        running.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_after_a_500_the_same_connection_answers_the_next_request(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"GET /broken HTTP/1.1\r\nHost: x\r\n\r\nGET /fine HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    statuses, bodies = [], []
    for _ in range(2):
        status = await reader.readline()
        assert status, "the server closed the connection without answering"
        headers = {}
        while (line := await reader.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        statuses.append(int(status.split()[1]))
        bodies.append(json.loads(await reader.readexactly(int(headers["content-length"]))))
    writer.close()
    assert statuses == [500, 200]
    assert bodies[0] == {"error": {"code": "internal_error", "message": "internal error"}}
