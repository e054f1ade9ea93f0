"""The `executions` table: one summary row per execution (no output bodies).

Rows are written behind the executions, in batches: no caller waits for its row, and the
executions of a short window (`LINGER`) cost one statement rather than one round trip
each."""

import asyncio
from typing import Any

import asyncpg
import structlog

from llmsafespace.contracts import ExecutionResult, ExecutionType

log = structlog.get_logger()
LINGER = 0.2  # seconds a queued row waits for others to share its statement
# One statement per batch, its rows as one array per column: PostgreSQL plans and runs
# one insert instead of one per row.
_INSERT = (
    "INSERT INTO executions (id, sandbox_id, owner_id, type, status, exit_code, ended_by,"
    " stdout_bytes, stderr_bytes, started_at, completed_at, duration_ms, cpu_ms,"
    " peak_memory_bytes) SELECT * FROM unnest($1::text[], $2::text[], $3::text[],"
    " $4::text[], $5::text[], $6::integer[], $7::text[], $8::bigint[], $9::bigint[],"
    " $10::timestamptz[], $11::timestamptz[], $12::double precision[],"
    " $13::double precision[], $14::bigint[]) ON CONFLICT (sandbox_id, id) DO NOTHING"
)


class ExecutionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._pending: list[tuple[Any, ...]] = []
        self._writer: asyncio.Task[None] | None = None

    def record(
        self, owner_id: str, kind: ExecutionType, result: ExecutionResult, sizes: tuple[int, int]
    ) -> None:
        """Queue the execution's summary row; the writer inserts it shortly."""
        self._pending.append(self._row(owner_id, kind, result, sizes))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())

    async def drain(self) -> None:
        """Wait until every queued row is written (graceful shutdown)."""
        if self._writer is not None:
            await self._writer

    async def _write(self) -> None:
        await asyncio.sleep(LINGER)
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await self._pool.execute(_INSERT, *zip(*batch, strict=True))
            except Exception:
                log.exception("execution_records_not_written", rows=len(batch))

    @staticmethod
    def _row(
        owner_id: str, kind: ExecutionType, result: ExecutionResult, sizes: tuple[int, int]
    ) -> tuple[Any, ...]:
        usage = result.usage
        return (
            result.execution_id,
            result.sandbox_id,
            owner_id,
            kind.value,
            result.status.value,
            result.exit_code,
            result.ended_by,
            sizes[0],
            sizes[1],
            result.started_at,
            result.completed_at,
            result.duration_ms,
            usage.cpu_ms if usage else None,
            usage.peak_memory_bytes if usage else None,
        )
