"""The one error envelope that crosses every boundary, and its HTTP mapping."""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ErrorCode(StrEnum):
    INVALID_REQUEST = "invalid_request"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXCEEDED = "quota_exceeded"
    SANDBOX_NOT_RUNNING = "sandbox_not_running"
    RUNTIME_UNAVAILABLE = "runtime_unavailable"
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    TIMEOUT = "timeout"
    INVALID_PATH = "invalid_path"
    INSUFFICIENT_STORAGE = "insufficient_storage"
    NETWORK_DISABLED = "network_disabled"
    SANDBOX_PAUSED = "sandbox_paused"
    NOT_IMPLEMENTED = "not_implemented"
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    METHOD_NOT_ALLOWED = "method_not_allowed"


HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.CONFLICT: 409,
    ErrorCode.SANDBOX_NOT_RUNNING: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.QUOTA_EXCEEDED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.RUNTIME_UNAVAILABLE: 503,
    ErrorCode.TIMEOUT: 504,
    ErrorCode.INVALID_PATH: 400,
    ErrorCode.INSUFFICIENT_STORAGE: 507,
    ErrorCode.NETWORK_DISABLED: 409,
    ErrorCode.SANDBOX_PAUSED: 409,
    ErrorCode.NOT_IMPLEMENTED: 501,
    ErrorCode.RANGE_NOT_SATISFIABLE: 416,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
}


class ErrorBody(BaseModel):
    """`{code, message, details}` — the payload of every error."""

    model_config = ConfigDict(frozen=True)

    code: ErrorCode
    message: str
    details: dict[str, Any] | None = None


class ErrorEnvelope(BaseModel):
    """What an error reply looks like on the bus and over HTTP: `{"error": {...}}`."""

    model_config = ConfigDict(frozen=True)

    error: ErrorBody = Field(...)


class ServiceError(Exception):
    """Raised anywhere; crosses boundaries as an `ErrorEnvelope`."""

    def __init__(
        self, code: ErrorCode, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def envelope(self) -> ErrorEnvelope:
        return ErrorEnvelope(
            error=ErrorBody(code=self.code, message=self.message, details=self.details)
        )

    @classmethod
    def from_envelope(cls, envelope: ErrorEnvelope) -> "ServiceError":
        body = envelope.error
        return cls(body.code, body.message, body.details)
