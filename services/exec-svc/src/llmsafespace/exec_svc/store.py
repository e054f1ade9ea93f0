"""The `executions` table: one summary row per execution (no output bodies)."""

import asyncpg

from llmsafespace.contracts import ExecutionResult, ExecutionType


class ExecutionStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(
        self, owner_id: str, kind: ExecutionType, result: ExecutionResult, sizes: tuple[int, int]
    ) -> None:
        usage = result.usage
        await self._pool.execute(
            "INSERT INTO executions (id, sandbox_id, owner_id, type, status, exit_code, ended_by,"
            " stdout_bytes, stderr_bytes, started_at, completed_at, duration_ms, cpu_ms,"
            " peak_memory_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
            " $13, $14) ON CONFLICT (id) DO NOTHING",
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
