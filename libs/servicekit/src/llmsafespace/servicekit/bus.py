"""The bus as services use it: errors as envelopes, typed requests, durable events."""

import json
from typing import Any, TypeVar

import nats.errors
import structlog
from faststream.middlewares import ExceptionMiddleware
from nats.aio.client import Client as NatsClient
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError
from pydantic import BaseModel, ValidationError

from llmsafespace.contracts import Contract, ErrorCode, ErrorEnvelope, ServiceError, subjects

ReplyT = TypeVar("ReplyT", bound=BaseModel)
log = structlog.get_logger()

EVENTS_MAX_AGE_SECONDS = 7 * 24 * 3600


def validation_details(error: ValidationError) -> dict[str, Any]:
    """Per-field messages, keyed by the dotted field path clients sent."""
    fields: dict[str, str] = {}
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "body"
        fields[path] = item["msg"]
    return {"fields": fields}


def error_reply(exc: Exception) -> dict[str, Any]:
    """What a handler's exception becomes on the wire."""
    if isinstance(exc, ServiceError):
        error = exc
    elif isinstance(exc, ValidationError):
        error = ServiceError(ErrorCode.INVALID_REQUEST, "invalid message", validation_details(exc))
    else:
        log.error("handler_failed", exc_info=exc)
        error = ServiceError(ErrorCode.INTERNAL_ERROR, "internal error")
    reply: dict[str, Any] = error.envelope().model_dump(mode="json", exclude_none=True)
    return reply


def error_middleware() -> ExceptionMiddleware:
    """Every handler exception is answered with an error envelope instead of silence."""
    return ExceptionMiddleware(publish_handlers={Exception: error_reply})


class Bus:
    """Outgoing requests and events over one NATS connection."""

    def __init__(self, connection: NatsClient, timeout: float = 10.0) -> None:
        self._nc = connection
        self._js = connection.jetstream()
        self._timeout = timeout

    async def request(
        self,
        subject: str,
        payload: Contract,
        reply: type[ReplyT],
        *,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> ReplyT:
        """Send a command; return the typed reply or raise the `ServiceError` it carried."""
        data = payload.model_dump_json(by_alias=True).encode()
        try:
            message = await self._nc.request(
                subject, data, timeout=timeout or self._timeout, headers=headers
            )
        except nats.errors.NoRespondersError as exc:
            raise ServiceError(
                ErrorCode.SERVICE_UNAVAILABLE, f"no service answers {subject}"
            ) from exc
        except nats.errors.TimeoutError as exc:
            raise ServiceError(ErrorCode.TIMEOUT, f"no reply to {subject} in time") from exc
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError) as exc:
            raise ServiceError(ErrorCode.SERVICE_UNAVAILABLE, "message bus unavailable") from exc
        body = json.loads(message.data)
        if _is_error(body):
            raise ServiceError.from_envelope(ErrorEnvelope.model_validate(body))
        return reply.model_validate(body)

    async def event(self, subject: str, payload: Contract) -> None:
        """Publish a durable event; an outage of the bus is logged, never raised to callers."""
        try:
            await self._js.publish(subject, payload.model_dump_json(by_alias=True).encode())
        except Exception as exc:
            log.warning("event_publish_failed", subject=subject, error=str(exc))


def _is_error(body: object) -> bool:
    """An error envelope is an object with one key, `error`, holding an object."""
    return isinstance(body, dict) and body.keys() == {"error"} and isinstance(body["error"], dict)


async def ensure_streams(connection: NatsClient) -> None:
    """Create the JetStream streams if missing (idempotent; safe from every replica)."""
    js = connection.jetstream()
    config = StreamConfig(
        name=subjects.EVENTS_STREAM,
        subjects=[subjects.EVENTS_ALL],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_age=EVENTS_MAX_AGE_SECONDS,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)
