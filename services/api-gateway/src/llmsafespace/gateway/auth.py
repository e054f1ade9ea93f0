"""Authentication (API key or access token) and rate limiting, applied per endpoint."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps

from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from llmsafespace.contracts import Caller, ErrorCode, ServiceError

from .accounts import Accounts, Identity
from .errors import error_response
from .ratelimit import Quota, RateLimiter, limit_class
from .state import state_of

AuthedEndpoint = Callable[[Request, Caller], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
UNAUTHORIZED = "a valid API key or token is required: Authorization: Bearer lsp_..."


def bearer_token(request: HTTPConnection) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def identify(connection: HTTPConnection, credential: str | None) -> Identity:
    accounts: Accounts = state_of(connection)["accounts"]
    identity = await accounts.authenticate(credential) if credential else None
    if identity is None:
        raise ServiceError(ErrorCode.UNAUTHORIZED, UNAUTHORIZED)
    return identity


async def admit(request: Request) -> tuple[Identity, Quota | None]:
    """Who is calling and their rate limit (None: not limited), in one Redis round trip
    for a credential this replica has seen: the hit is counted while confirming that the
    credential's cache entry still exists (revoking deletes it). Anything else takes the
    full lookup."""
    accounts: Accounts = state_of(request)["accounts"]
    limiter: RateLimiter = state_of(request)["limiter"]
    credential = bearer_token(request)
    limit = limit_class(request.method, request.url.path)
    entry = accounts.cache_entry(credential) if credential else None
    remembered = accounts.remembered(entry) if entry else None
    if remembered is not None:
        quota, confirmed = await limiter.hit(remembered.caller, limit, confirm=entry)
        if confirmed:
            return remembered, quota
    identity = await identify(request, credential)
    if remembered != identity:  # else the hit above was counted for this very caller
        quota, _ = await limiter.hit(identity.caller, limit)
    return identity, quota


class CredentialLost(Exception):
    """The credential a long-lived connection holds was revoked or expired."""


@dataclass(frozen=True)
class HeldCredential:
    """The credential a long-lived connection (a WebSocket) was opened with, checked
    again each time it is used: revoking a key or a token's expiry ends what it opened."""

    accounts: Accounts
    limiter: RateLimiter
    credential: str
    identity: Identity

    @property
    def expires(self) -> int | None:
        """Epoch seconds when an access token ends; None for an API key."""
        return self.accounts.token_expiry(self.credential)

    async def use(self, limit: str | None = None) -> Quota | None:
        """Confirm the credential is still live, counting one request of class `limit`
        (None: count nothing), in one Redis round trip while its cache entry stands;
        else the full lookup. Raises `CredentialLost`."""
        entry = self.accounts.cache_entry(self.credential)
        if entry is None:  # an expired or malformed token
            raise CredentialLost
        quota, confirmed = await self.limiter.hit(self.identity.caller, limit, confirm=entry)
        if confirmed or await self.accounts.authenticate(self.credential) == self.identity:
            return quota
        raise CredentialLost


def authenticated(endpoint: AuthedEndpoint) -> Endpoint:
    """Run an endpoint only for a valid credential within its rate limit; it receives the
    `Caller`, and every rate-limited response carries the `X-RateLimit-*` headers."""

    @wraps(endpoint)
    async def wrapper(request: Request) -> Response:
        identity, quota = await admit(request)
        if quota is not None and quota.exceeded:
            response: Response = error_response(quota.refusal())
        else:
            try:
                response = await endpoint(request, identity.caller)
            except ServiceError as exc:
                response = error_response(exc)
        if quota is not None:
            response.headers.update(quota.headers())
        return response

    return wrapper
