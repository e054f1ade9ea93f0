"""A real 500 leaves no secret in the log: a handler fails while the gateway's settings,
and a plaintext secret read from them, are locals of its frame; the failure goes through
the gateway's own error middleware and the services' structlog configuration, and the
captured log is searched for every secret and for any sign of frame locals."""

import logging
from collections.abc import Iterator

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from llmsafespace.gateway import errors
from llmsafespace.gateway.errors import EXCEPTION_HANDLERS, UnexpectedErrors
from llmsafespace.gateway.settings import Settings
from llmsafespace.servicekit import configure_logging

SECRETS = {
    "NATS_URL": "nats://gateway:nats-secret-4f1a@nats:4222",
    "DATABASE_URL": "postgresql://app:pg-secret-9c2e@db:5432/llmsafespace",
    "REDIS_URL": "redis://:valkey-secret-77d0@valkey:6379/0",
    "GATEWAY_BOOTSTRAP_ADMIN_KEY": "lss_admin-secret-0b3c5d7e9f",
    "GATEWAY_JWT_SECRET": "jwt-secret-" + "e" * 32,
}
SECRET_PARTS = [
    "nats-secret-4f1a",
    "pg-secret-9c2e",
    "valkey-secret-77d0",
    SECRETS["GATEWAY_BOOTSTRAP_ADMIN_KEY"],
    SECRETS["GATEWAY_JWT_SECRET"],
]


@pytest.fixture(autouse=True)
def unconfigured_after(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Logging is configured onto the stream this test captures, closed after it: the
    error module logs through a logger of this test's own (a configured logger caches its
    stream on first use), and the root handlers and structlog are restored after."""
    monkeypatch.setattr(errors, "log", structlog.get_logger())
    handlers = logging.root.handlers[:]
    yield
    logging.root.handlers[:] = handlers
    structlog.reset_defaults()


def app_failing_with(settings: Settings) -> Starlette:
    async def failing(_: Request) -> Response:
        admin_key = settings.bootstrap_admin_key
        plaintext = admin_key.get_secret_value() if admin_key else ""
        database = settings.database_url.get_secret_value()
        raise KeyError(f"no route for a key of {len(plaintext)} characters ({len(database)})")

    return Starlette(
        routes=[Route("/fail", failing)],
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[Middleware(UnexpectedErrors)],
    )


async def test_a_500_logs_its_traceback_without_a_secret_or_a_frame_local(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.database_url.get_secret_value() == SECRETS["DATABASE_URL"]
    configure_logging("api-gateway", settings.log_format, settings.log_level)
    transport = httpx.ASGITransport(app=app_failing_with(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get("/fail")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal error"}}
    log = capsys.readouterr().err
    assert "request_failed" in log, "the 500 was logged"
    assert "KeyError" in log, "with its error"
    assert '"name": "failing"' in log, "with its traceback, down to the failing frame"
    for secret in SECRET_PARTS:
        assert secret not in log
    for local in ("plaintext", "admin_key", "database", "SecretStr"):
        assert local not in log, f"a frame local ({local}) is in the log"
