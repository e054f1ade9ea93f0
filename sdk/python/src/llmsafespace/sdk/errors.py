"""The SDK's exceptions, and the one table that maps the API's error codes onto them."""

from typing import Any

from llmsafespace.contracts import ErrorCode


class LLMSafeSpaceError(Exception):
    """Every error the SDK raises. `code`, `message` and `details` come from the API's
    error envelope `{"error": {"code", "message", "details"}}`; `status` is the HTTP
    status when there was one."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details or {}
        self.status = status


class AuthenticationError(LLMSafeSpaceError):
    """The API key is missing, unknown or revoked, or it may not do this."""


class NotFoundError(LLMSafeSpaceError):
    """No such sandbox or pool (or it belongs to someone else)."""


class ValidationError(LLMSafeSpaceError):
    """The request was refused as invalid; `fields` names each bad field."""

    @property
    def fields(self) -> dict[str, Any]:
        fields = self.details.get("fields", {})
        return fields if isinstance(fields, dict) else {}


class ConflictError(LLMSafeSpaceError):
    """The request conflicts with the current state (e.g. a pool name already taken)."""


class SandboxError(LLMSafeSpaceError):
    """The sandbox cannot do this now: it is not running, or its runtime failed."""


class SandboxPausedError(SandboxError):
    """The sandbox is paused: `resume()` it (or create it with `auto_resume=True`)."""


class RateLimitError(LLMSafeSpaceError):
    """Too many requests; wait `retry_after` seconds (None when the server did not say)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class QuotaExceededError(LLMSafeSpaceError):
    """A quota (sandboxes, memory, paused sandboxes, snapshots) is used up. Waiting does
    not lift it: delete what you no longer need, or ask an admin. Not a `RateLimitError`,
    so a loop that sleeps `retry_after` and retries does not retry this forever."""


class TimeoutError(LLMSafeSpaceError):
    """The API did not answer in time (shadows the builtin inside this module only)."""


class ServiceUnavailableError(LLMSafeSpaceError):
    """A service behind the API is down, or the API itself cannot be reached."""


class APIConnectionError(ServiceUnavailableError):
    """The API could not be reached at all (connection refused, DNS, TLS)."""


class ClientClosedError(LLMSafeSpaceError):
    """This client makes no more requests: it was closed (`close()`, the end of its `with`
    block) or its sandbox terminated. `connect()` again to use a sandbox that still runs."""


class StreamUnavailableError(LLMSafeSpaceError):
    """The server offers no streaming endpoint; use the synchronous execute instead."""


ERRORS: dict[str, type[LLMSafeSpaceError]] = {
    ErrorCode.INVALID_REQUEST: ValidationError,
    ErrorCode.PAYLOAD_TOO_LARGE: ValidationError,
    ErrorCode.UNAUTHORIZED: AuthenticationError,
    ErrorCode.FORBIDDEN: AuthenticationError,
    ErrorCode.NOT_FOUND: NotFoundError,
    ErrorCode.CONFLICT: ConflictError,
    ErrorCode.SANDBOX_NOT_RUNNING: SandboxError,
    ErrorCode.RUNTIME_UNAVAILABLE: SandboxError,
    ErrorCode.RATE_LIMITED: RateLimitError,
    ErrorCode.QUOTA_EXCEEDED: QuotaExceededError,
    ErrorCode.SERVICE_UNAVAILABLE: ServiceUnavailableError,
    ErrorCode.TIMEOUT: TimeoutError,
    ErrorCode.INTERNAL_ERROR: LLMSafeSpaceError,
    ErrorCode.INVALID_PATH: ValidationError,
    ErrorCode.INSUFFICIENT_STORAGE: SandboxError,
    ErrorCode.NETWORK_DISABLED: ConflictError,
    ErrorCode.SANDBOX_PAUSED: SandboxPausedError,
    ErrorCode.NOT_IMPLEMENTED: LLMSafeSpaceError,
    ErrorCode.RANGE_NOT_SATISFIABLE: ValidationError,
    ErrorCode.METHOD_NOT_ALLOWED: ValidationError,
}
"""Error code (from the envelope) → exception class. The only place codes are mapped."""

_STATUS_CODES: dict[int, str] = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.NOT_FOUND,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    416: ErrorCode.RANGE_NOT_SATISFIABLE,
    429: ErrorCode.RATE_LIMITED,
    502: ErrorCode.SERVICE_UNAVAILABLE,
    503: ErrorCode.SERVICE_UNAVAILABLE,
    504: ErrorCode.TIMEOUT,
    507: ErrorCode.INSUFFICIENT_STORAGE,
}
"""For replies without an envelope (a proxy's page, a missing route): status → code."""


def error_from_envelope(
    body: object, status: int | None = None, retry_after: float | None = None
) -> LLMSafeSpaceError:
    """The exception for an error reply: the envelope's code picks the class; without an
    envelope the HTTP status stands in for the code."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        code: str = error["code"]
        message = str(error.get("message") or code)
        details = error.get("details") if isinstance(error.get("details"), dict) else None
    else:
        code = _STATUS_CODES.get(status or 0, ErrorCode.INTERNAL_ERROR)
        message = f"HTTP {status}" if status else "unexpected reply"
        details = None
    cls = ERRORS.get(code, LLMSafeSpaceError)
    if retry_after is None and details is not None:  # a WebSocket's error has no headers
        wait = details.get("retryAfter")
        retry_after = wait if isinstance(wait, int | float) and not isinstance(wait, bool) else None
    if cls is RateLimitError:
        return RateLimitError(
            message, retry_after=retry_after, code=code, details=details, status=status
        )
    return cls(message, code=code, details=details, status=status)
