"""The `audit_events` table. Only this service writes it; a row per event, never twice."""

import json
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from llmsafespace.contracts import AuditEvent, AuditPage, AuditQuery, Role

_COLUMNS = (
    "seq, subject, kind, event, sandbox_id, execution_id, user_id, outcome, payload, occurred_at"
)


class AuditStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, stream_created: datetime, events: Sequence[AuditEvent]) -> int:
        """Insert the events not yet recorded (one statement); returns how many were new."""
        if not events:
            return 0
        columns = list(
            zip(
                *(
                    (
                        event.seq,
                        event.subject,
                        event.kind.value,
                        event.event,
                        event.sandbox_id,
                        event.execution_id,
                        event.user_id,
                        event.outcome,
                        json.dumps(event.payload),
                        event.occurred_at,
                    )
                    for event in events
                ),
                strict=True,
            )
        )
        rows = await self._pool.fetch(
            "INSERT INTO audit_events (stream_created, seq, subject, kind, event, sandbox_id,"
            " execution_id, user_id, outcome, payload, occurred_at)"
            " SELECT $1, seq, subject, kind, event, sandbox_id, execution_id, user_id, outcome,"
            " payload::jsonb, occurred_at FROM unnest($2::bigint[], $3::text[], $4::text[],"
            " $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],"
            " $11::timestamptz[]) AS t(seq, subject, kind, event, sandbox_id, execution_id,"
            " user_id, outcome, payload, occurred_at)"
            " ON CONFLICT (stream_created, seq) DO NOTHING RETURNING seq",
            stream_created,
            *columns,
        )
        return len(rows)

    async def query(self, query: AuditQuery) -> AuditPage:
        """Oldest first. A user sees only events recorded as theirs, whatever they ask."""
        caller = query.caller
        owner = None if caller.role is Role.ADMIN else caller.user_id
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM audit_events"
            " WHERE ($1::text IS NULL OR sandbox_id = $1)"
            " AND ($2::text IS NULL OR user_id = $2)"
            " AND ($3::text IS NULL OR user_id = $3)"
            " AND ($4::timestamptz IS NULL OR occurred_at >= $4)"
            " ORDER BY occurred_at, stream_created, seq LIMIT $5",
            query.sandbox_id,
            query.user_id,
            owner,
            query.since,
            query.limit + 1,
        )
        events = [
            AuditEvent.model_validate({**dict(row), "payload": json.loads(row["payload"])})
            for row in rows[: query.limit]
        ]
        return AuditPage(events=events, limit=query.limit, has_more=len(rows) > query.limit)
