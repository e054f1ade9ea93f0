"""Bearer API-key authentication, applied per endpoint."""

from collections.abc import Awaitable, Callable
from functools import wraps

from starlette.requests import Request
from starlette.responses import Response

from llmsafespace.contracts import Caller, ErrorCode, ServiceError

AuthedEndpoint = Callable[[Request, Caller], Awaitable[Response]]


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def authenticated(endpoint: AuthedEndpoint) -> Callable[[Request], Awaitable[Response]]:
    """Wrap an endpoint so it runs only for a valid key, receiving the `Caller`."""

    @wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        token = bearer_token(request)
        caller = await request.state.accounts.authenticate(token) if token else None
        if caller is None:
            raise ServiceError(
                ErrorCode.UNAUTHORIZED,
                "a valid API key is required: Authorization: Bearer lsp_...",
            )
        return await endpoint(request, caller)

    return wrapper
