"""The bus as services use it: errors as envelopes, typed requests, durable events."""

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import nats.errors
import structlog
from faststream import BaseMiddleware
from faststream.message import StreamMessage
from faststream.middlewares import ExceptionMiddleware
from nats.aio.client import Client as NatsClient
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError
from prometheus_client import Counter, Histogram
from pydantic import ValidationError

from llmsafespace.contracts import (
    BUS,
    Broadcast,
    Command,
    Contract,
    ErrorCode,
    ErrorEnvelope,
    ServiceError,
    subjects,
)

from .db import database_unavailable
from .keepalive import SILENCE, KeptAlive, ResponderStopped

RequestT = TypeVar("RequestT", bound=Contract)
ReplyT = TypeVar("ReplyT", bound=Contract)
REQUEST_SECONDS = Histogram(
    "bus_request_duration_seconds", "Bus request/reply latency", ["subject"]
)
ERRORS = Counter("service_errors_total", "Errors answered, by error code", ["code"])
log = structlog.get_logger()

EVENTS_MAX_AGE_SECONDS = 7 * 24 * 3600
OUTPUT_MAX_AGE_SECONDS = 3600
OUTPUT_MAX_BYTES = 2**30  # the default of `ServiceSettings.output_stream_max_bytes`


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
    elif database_unavailable(exc):
        log.warning("database_unavailable", error=str(exc))
        error = ServiceError(ErrorCode.SERVICE_UNAVAILABLE, "database unavailable")
    else:
        log.error("handler_failed", exc_info=exc)
        error = ServiceError(ErrorCode.INTERNAL_ERROR, "internal error")
    ERRORS.labels(code=error.code.value).inc()
    reply: dict[str, Any] = error.envelope().model_dump(mode="json", exclude_none=True)
    return reply


REQUEST_ID_HEADER = "X-Request-Id"
# A command sent with `Bus.start` carries this header: answer only a refusal.
REPLY_HEADER = "Llmsafespace-Reply"
REFUSALS_ONLY = "refusals"


class RequestContext(BaseMiddleware):
    """Binds the request id a command carries (set by the gateway) to the log context."""

    async def consume_scope(
        self, call_next: Callable[[StreamMessage[Any]], Awaitable[Any]], msg: StreamMessage[Any]
    ) -> Any:
        request_id = (msg.headers or {}).get(REQUEST_ID_HEADER)
        if not request_id:
            return await call_next(msg)
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            return await call_next(msg)


def middlewares() -> tuple[type[BaseMiddleware], ExceptionMiddleware]:
    """Every service broker's middlewares: request context, then errors as envelopes."""
    return (RequestContext, error_middleware())


def error_middleware() -> ExceptionMiddleware:
    """Every handler exception is answered with an error envelope instead of silence."""
    return ExceptionMiddleware(publish_handlers={Exception: error_reply})


class Reply(Protocol):
    @property
    def data(self) -> bytes: ...


class Connection(Protocol):
    """What the bus uses of a connection: a nats-py client, or in unit tests a
    `BrokerConnection` over FastStream's in-memory test broker."""

    @property
    def is_connected(self) -> bool: ...

    async def request(
        self, subject: str, payload: bytes, *, timeout: float, headers: dict[str, str] | None
    ) -> Reply: ...

    async def publish(
        self, subject: str, payload: bytes, reply: str = "", headers: dict[str, str] | None = None
    ) -> None: ...


class Bus:
    """Outgoing requests and events over one NATS connection."""

    def __init__(
        self, connection: Connection, timeout: float = 10.0, silence: float = SILENCE
    ) -> None:
        self._nc = connection
        self._timeout = timeout
        # Requests allowed longer than `silence` are kept alive (see `keepalive`); the
        # in-memory broker of unit tests has no inboxes, and no responder that dies.
        self._kept_alive = (
            KeptAlive(connection, silence) if isinstance(connection, NatsClient) else None
        )

    async def request(
        self,
        command: Command[RequestT, ReplyT],
        payload: RequestT,
        *,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> ReplyT:
        """Send a command; return its typed reply or raise the `ServiceError` it carried.
        A request allowed more than the bus's `silence` fails sooner, 503, once its
        responder has been silent that long (it stopped)."""
        subject = command.subject
        data = payload.model_dump_json(by_alias=True, context=BUS).encode()
        headers = self._outgoing(headers)
        timeout = timeout or self._timeout
        started = time.perf_counter()
        message: Reply
        try:
            if self._kept_alive is not None and timeout > self._kept_alive.silence:
                message = await self._kept_alive.request(
                    subject, data, timeout=timeout, headers=headers
                )
            else:
                message = await self._nc.request(subject, data, timeout=timeout, headers=headers)
        except ResponderStopped as exc:
            raise ServiceError(
                ErrorCode.SERVICE_UNAVAILABLE,
                f"the service answering {subject} stopped during the request",
            ) from exc
        except nats.errors.NoRespondersError as exc:
            raise ServiceError(
                ErrorCode.SERVICE_UNAVAILABLE, f"no service answers {subject}"
            ) from exc
        except nats.errors.TimeoutError as exc:
            raise ServiceError(ErrorCode.TIMEOUT, f"no reply to {subject} in time") from exc
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError) as exc:
            raise ServiceError(ErrorCode.SERVICE_UNAVAILABLE, "message bus unavailable") from exc
        REQUEST_SECONDS.labels(subject=subject).observe(time.perf_counter() - started)
        data = message.data
        if _may_be_error(data) and _is_error(body := json.loads(data)):
            raise ServiceError.from_envelope(ErrorEnvelope.model_validate(body))
        return command.reply.model_validate_json(data)  # decoded and validated in one pass

    def _outgoing(self, headers: dict[str, str] | None) -> dict[str, str] | None:
        """A command's headers, with the request id it carries; raises while the bus
        reconnects (nats-py would buffer the command and let it time out: the caller
        learns at once instead, 503, and may retry once the bus is back)."""
        if not self._nc.is_connected:
            raise ServiceError(ErrorCode.SERVICE_UNAVAILABLE, "message bus unavailable")
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            return {REQUEST_ID_HEADER: request_id, **(headers or {})}
        return headers

    async def start(
        self, command: Command[RequestT, Any], payload: RequestT, refusals_to: str
    ) -> None:
        """Send a command whose acceptance shows as its own effects (a streamed
        execution's messages): the service answers only a refusal, its error envelope,
        to the subject `refusals_to`, where the server's "no responders" status lands too
        when no service is there. A streamed execution is spared the acceptance reply's
        trip through the bus, which cost a fifth of a millisecond of its round trip."""
        headers = self._outgoing({REPLY_HEADER: REFUSALS_ONLY})
        data = payload.model_dump_json(by_alias=True, context=BUS).encode()
        try:
            await self._nc.publish(command.subject, data, reply=refusals_to, headers=headers)
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError) as exc:
            raise ServiceError(ErrorCode.SERVICE_UNAVAILABLE, "message bus unavailable") from exc

    async def broadcast(self, broadcast: Broadcast[RequestT], payload: RequestT) -> None:
        """Publish a command every instance hears and none answers (e.g. cancel)."""
        try:
            await self._nc.publish(
                broadcast.subject, payload.model_dump_json(by_alias=True, context=BUS).encode()
            )
        except (nats.errors.ConnectionClosedError, nats.errors.ConnectionReconnectingError) as exc:
            raise ServiceError(ErrorCode.SERVICE_UNAVAILABLE, "message bus unavailable") from exc

    async def event(self, subject: str, payload: Contract) -> None:
        """Publish an event into its JetStream stream without waiting for the store's ack
        (events sit on every hot path; the client keeps them in order and buffers them
        through a reconnect). An outage is logged, never raised to callers."""
        try:
            await self._nc.publish(
                subject, payload.model_dump_json(by_alias=True, context=BUS).encode()
            )
        except Exception as exc:
            log.warning("event_publish_failed", subject=subject, error=str(exc))


def _may_be_error(data: bytes) -> bool:
    """Whether a reply could be an error envelope: its first key is `error` (a reply
    contract never starts with that field), checked without decoding it."""
    return data.lstrip(b" \t\r\n{").startswith(b'"error"')


def _is_error(body: object) -> bool:
    """An error envelope is an object with one key, `error`, holding an object."""
    return isinstance(body, dict) and body.keys() == {"error"} and isinstance(body["error"], dict)


def streams(output_max_bytes: int = OUTPUT_MAX_BYTES) -> tuple[StreamConfig, ...]:
    """The JetStream streams every service creates (or updates) at start.

    Events are kept a week, however many: audit-svc records them from the stream, and a
    byte limit would drop the oldest ones unread while it is down (docs/architecture.md).
    Streamed output is kept an hour and at most `output_max_bytes` in all, the oldest
    messages going first: exec-svc caps each execution's output, nothing else capped them
    all together. A resume of an execution whose first messages went replays from the
    oldest one kept, and still ends with its terminal message (the newest)."""
    return (
        StreamConfig(
            name=subjects.EVENTS_STREAM,
            subjects=[subjects.EVENTS_ALL],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=EVENTS_MAX_AGE_SECONDS,
        ),
        StreamConfig(
            name=subjects.OUTPUT_STREAM,
            subjects=[subjects.OUTPUT_ALL],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=OUTPUT_MAX_AGE_SECONDS,
            max_bytes=output_max_bytes,
            discard=DiscardPolicy.OLD,
        ),
    )


async def ensure_streams(connection: NatsClient, output_max_bytes: int = OUTPUT_MAX_BYTES) -> None:
    """Create the JetStream streams, or update them to this configuration (idempotent;
    safe from every replica): a stream made before a limit existed gets it at the next
    start."""
    js = connection.jetstream()
    for config in streams(output_max_bytes):
        try:
            await js.add_stream(config)
        except BadRequestError:
            await js.update_stream(config)
