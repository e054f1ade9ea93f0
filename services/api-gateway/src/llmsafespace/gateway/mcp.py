"""`/mcp`: the SDK's MCP server (`llmsafespace.sdk.mcp_server`) over Streamable HTTP.

The endpoint only checks that the bearer credential is valid (401 otherwise); each tool
call is then an ordinary request to this same gateway's public API with the caller's own
bearer, sent to the address the MCP request arrived on. So authentication, ownership,
quotas, rate limits and audit apply exactly as for any client, and nothing here touches
the bus. Stateless: any replica serves any MCP request (no sticky sessions); a call that
names no sandbox uses the caller's only running one (several: it must name one).
"""

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from mcp.server import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.types import Message, Receive, Scope, Send

from llmsafespace.contracts import ServiceError
from llmsafespace.sdk import ClientConfig
from llmsafespace.sdk.mcp_server import build_server
from llmsafespace.sdk.mcp_tools import SandboxSession

from .auth import bearer_token, identify
from .bodies import read_limited
from .errors import error_response
from .operation import ApiRoute, Operation

PATH = "/mcp"
MAX_BODY_BYTES = 4 * 1024 * 1024  # the MCP SDK's own bound, answered here in our envelope
_OPERATION = Operation(
    "MCP (Model Context Protocol) over Streamable HTTP",
    "mcp",
    {"type": "object"},
    description="JSON-RPC 2.0 messages of the Model Context Protocol (tools/list,"
    " tools/call, ...), answered as JSON or `text/event-stream`; the sandbox tools act"
    " with the caller's own credential. See the README's MCP section.",
)
Lifespan = Callable[[Starlette], AbstractAsyncContextManager[Any]]


class McpEndpoint:
    """The ASGI endpoint; its session manager runs in the app's lifespan (`around`)."""

    def __init__(self, api_prefix: str) -> None:
        self._api_prefix = api_prefix
        server = build_server(self._session_for)
        self._manager = StreamableHTTPSessionManager(
            server, stateless=True, max_request_body_size=MAX_BODY_BYTES
        )

    def around(self, lifespan: Lifespan) -> Lifespan:
        """The app's lifespan with the MCP session manager running inside it."""

        @asynccontextmanager
        async def wrapped(app: Starlette) -> AsyncIterator[Any]:
            async with lifespan(app) as state, self._manager.run():
                yield state

        return wrapped

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection = HTTPConnection(scope)
        try:
            await identify(connection, bearer_token(connection))
            body = await read_limited(Request(scope, receive), MAX_BODY_BYTES)
        except ServiceError as exc:
            await error_response(exc)(scope, receive, send)
            return
        await self._manager.handle_request(scope, _replaying(body, receive), send)

    def route(self) -> ApiRoute:
        return ApiRoute("POST", PATH, self, _OPERATION)

    def _session_for(self, ctx: ServerRequestContext[Any, Any]) -> SandboxSession:
        """The caller's session: their bearer, and this gateway's API at the address it
        listens on. Plain HTTP: the gateway serves no TLS (a proxy in front ends it, and
        its `X-Forwarded-Proto`, which uvicorn applies to `request.url`, is not ours)."""
        request = ctx.request
        assert isinstance(request, Request), "the HTTP transport hands over its request"
        host, port = request.scope["server"]
        host = f"[{host}]" if ":" in host else host
        api_url = f"http://{host}:{port}{self._api_prefix}"
        return SandboxSession(ClientConfig(api_url, bearer_token(request) or ""))


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` for a request whose body was read already: the body, then what follows
    (the client's disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
