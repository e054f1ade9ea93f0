"""The audit trail: one row per event on `evt.>`, and how callers query it."""

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator

from .base import Contract
from .caller import Caller
from .ids import SandboxId, UserId

MAX_AUDIT_LIMIT = 500
_NUMBER = re.compile(r"^\s*[-+]?\d+(\.\d*)?\s*$")
DEFAULT_AUDIT_LIMIT = 100


class AuditKind(StrEnum):
    """Which family of events a row came from (the subject's third token)."""

    SANDBOX = "sandbox"
    WARMPOOL = "warmpool"
    EXEC = "exec"
    OTHER = "other"


class AuditEvent(Contract):
    """One event as recorded: who, what, which sandbox, when, and how it ended."""

    seq: int = Field(description="The event's sequence in the JetStream events stream")
    subject: str
    kind: AuditKind
    event: str = Field(description="The event name: created, running, completed, …")
    sandbox_id: str | None = None
    execution_id: str | None = None
    user_id: str | None = Field(default=None, description="Whose action it was, when known")
    outcome: str | None = Field(
        default=None, description="The status the event reports, else the event name"
    )
    payload: dict[str, Any] = Field(default_factory=dict, description="The event as published")
    occurred_at: datetime


class AuditQuery(Contract):
    """`cmd.audit.query`: events visible to the caller (admins: all; users: their own)."""

    caller: Caller
    sandbox_id: SandboxId | None = None
    user_id: UserId | None = None
    since: datetime | None = Field(
        default=None, description="Only events at or after this instant (ISO 8601)"
    )
    limit: int = Field(default=DEFAULT_AUDIT_LIMIT, ge=1, le=MAX_AUDIT_LIMIT)

    @field_validator("since", mode="before")
    @classmethod
    def _iso(cls, value: object) -> object:
        """ISO 8601 only: a bare number is not read as a Unix time."""
        if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
            raise ValueError("since must be an ISO 8601 date-time, e.g. 2025-01-31T12:00:00Z")
        return value

    @field_validator("since")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """An instant without a zone is read as UTC."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class AuditPage(Contract):
    """The reply to `cmd.audit.query`: oldest first, at most `limit` events."""

    events: list[AuditEvent]
    limit: int
    has_more: bool = Field(
        default=False, description="More events match: ask again with `since` set later"
    )
