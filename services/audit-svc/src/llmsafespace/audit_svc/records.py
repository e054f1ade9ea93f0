"""What one event on `evt.>` becomes in the audit trail: read from its subject and payload."""

import json
from datetime import datetime
from typing import Any

from llmsafespace.contracts import AuditEvent, AuditKind

# Where the payloads name the user on whose behalf the event happened: sandbox events
# carry the Sandbox (`ownerId`), execution events an ExecutionEvent (`userId`), commands
# their `caller`.
_USER_FIELDS = ("ownerId", "userId")


def audit_event(subject: str, data: bytes, seq: int, occurred_at: datetime) -> AuditEvent:
    """The audit row for the event published on `subject` with body `data`.

    Never raises on an unexpected payload: the audit trail records what was published,
    parsed as far as it goes."""
    payload = _payload(data)
    tokens = subject.split(".")
    family = tokens[2] if len(tokens) > 3 else ""
    kind = AuditKind(family) if family in AuditKind.__members__.values() else AuditKind.OTHER
    sandbox_id = _text(payload.get("sandboxId"))
    execution_id = _text(payload.get("executionId"))
    if kind is AuditKind.SANDBOX and len(tokens) >= 5:
        sandbox_id = tokens[3]
    elif kind is AuditKind.EXEC and len(tokens) >= 6:
        sandbox_id, execution_id = tokens[3], tokens[4]
    elif kind is AuditKind.SANDBOX:
        sandbox_id = sandbox_id or _text(payload.get("id"))
    event = tokens[-1]
    return AuditEvent(
        seq=seq,
        subject=subject,
        kind=kind,
        event=event,
        sandbox_id=sandbox_id,
        execution_id=execution_id,
        user_id=_user(payload),
        outcome=_text(payload.get("status")) or event,
        payload=payload,
        occurred_at=occurred_at,
    )


def _payload(data: bytes) -> dict[str, Any]:
    try:
        decoded = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"raw": data.decode(errors="replace")}
    return decoded if isinstance(decoded, dict) else {"value": decoded}


def _user(payload: dict[str, Any]) -> str | None:
    for field in _USER_FIELDS:
        if found := _text(payload.get(field)):
            return found
    caller = payload.get("caller")
    return _text(caller.get("userId")) if isinstance(caller, dict) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
