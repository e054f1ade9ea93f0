"""Logs never carry secrets: settings redact them, tracebacks carry no frame locals."""

import json
from collections.abc import Iterator

import pytest
import structlog

from llmsafespace.servicekit import ServiceSettings, configure_logging

SECRET = "postgresql://app:hunter2-very-secret@db:5432/llmsafespace"


def test_settings_redact_every_url_that_may_hold_a_credential() -> None:
    settings = ServiceSettings(
        NATS_URL="nats://svc:nats-pass-1@nats:4222",
        DATABASE_URL=SECRET,
    )
    shown = repr(settings) + str(settings) + json.dumps(settings.model_dump(mode="json"))
    for secret in ("nats-pass-1", "hunter2-very-secret"):
        assert secret not in shown
    assert settings.database_url.get_secret_value() == SECRET


@pytest.fixture(autouse=True)
def unconfigured_after() -> Iterator[None]:
    """A test here configures structlog onto the stream it captures, closed after it:
    later tests must not log there."""
    yield
    structlog.reset_defaults()


def test_a_logged_traceback_has_no_frame_locals(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test-logs", "json", "info")

    def fail(credential: str) -> None:
        settings = ServiceSettings(DATABASE_URL=credential)
        raise RuntimeError(f"failed on port {settings.http_port}")

    try:
        fail("lsp_caller-key-abcdef")
    except RuntimeError as exc:
        structlog.get_logger().error("request_failed", exc_info=exc)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    logged = json.loads(line)
    assert logged["event"] == "request_failed"
    assert "failed on port" in line, "the traceback itself is logged"
    assert "lsp_caller-key-abcdef" not in line


class _Writes:
    """A stream that keeps each `write` call apart."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def write(self, text: str) -> int:
        self.calls.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_log_line_is_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Services log a line per request: two writes (the line, then its newline) would be
    two system calls on that hot path."""
    stream = _Writes()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("test-logs", "json", "info")
    structlog.get_logger().info("request", status=200)
    (written,) = stream.calls
    assert written.endswith("\n")
    assert json.loads(written)["event"] == "request"
