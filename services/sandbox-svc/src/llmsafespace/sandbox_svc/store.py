"""The `sandboxes` table. Plain SQL; only this module spells it."""

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from llmsafespace.contracts import (
    CreateSandboxRequest,
    HoldState,
    Resources,
    Sandbox,
    SandboxStatus,
    SecurityLevel,
    quantity_bytes,
)

from .quota import Quota, Usage

# The two-key advisory lock space (apart from the one-key locks of the reaper and migrations):
# (this class, hashtext(owner)) serialises one owner's quota check and insert.
_QUOTA_LOCK_CLASS = 0x5A0D

_COLUMNS = (
    "id, owner_id, status, status_reason, runtime, security_level, timeout, resources,"
    " metadata, from_warm_pool, created_at, expires_at, terminated_at"
)


_INSERT = (
    "INSERT INTO sandboxes (id, owner_id, status, runtime, security_level, timeout, resources,"
    " metadata, expires_at, creator, runtime_id, endpoint, token, from_warm_pool, template)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $6::integer),"
    " $9, $10, $11, $12, $13, $14)"
    f" RETURNING {_COLUMNS}"
)


@dataclass(frozen=True)
class Adopted:
    """A claimed warm runtime a new sandbox runs on from its first moment."""

    runtime_id: str
    endpoint: str
    token: str


def _sandbox(row: asyncpg.Record) -> Sandbox:
    return Sandbox(
        id=row["id"],
        owner_id=row["owner_id"],
        status=SandboxStatus(row["status"]),
        status_reason=row["status_reason"],
        runtime=row["runtime"],
        security_level=SecurityLevel(row["security_level"]),
        timeout=row["timeout"],
        resources=Resources.model_validate_json(row["resources"]),
        metadata=json.loads(row["metadata"]),
        from_warm_pool=row["from_warm_pool"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        terminated_at=row["terminated_at"],
    )


class SandboxStore:
    def __init__(self, pool: asyncpg.Pool, creator: int | None = None) -> None:
        self._pool = pool
        self._creator = creator  # the instance key stamped on the rows this store inserts

    async def insert(
        self,
        sandbox_id: str,
        owner_id: str,
        request: CreateSandboxRequest,
        quota: Quota | None = None,
        adopted: Adopted | None = None,
    ) -> Sandbox:
        """The new row: `creating`, or — given the warm runtime it `adopted` — `running`
        on that runtime at once. With a quota, the owner's live sandboxes are counted and
        the row inserted in one transaction under a per-owner advisory lock, so concurrent
        creates on any number of replicas cannot overshoot it together; without one, the
        insert is a single statement."""
        status = SandboxStatus.CREATING if adopted is None else SandboxStatus.RUNNING
        args = (
            sandbox_id,
            owner_id,
            status.value,
            request.runtime,
            request.security_level.value,
            request.timeout,
            request.resources.model_dump_json(by_alias=True),
            json.dumps(request.metadata),
            self._creator,
            None if adopted is None else adopted.runtime_id,
            None if adopted is None else adopted.endpoint,
            None if adopted is None else adopted.token,
            adopted is not None,
            request.template,
        )
        if quota is None:
            return _sandbox(await self._pool.fetchrow(_INSERT, *args))
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))", _QUOTA_LOCK_CLASS, owner_id
            )
            memories = await conn.fetch(
                "SELECT resources->>'memory' AS memory FROM sandboxes"
                " WHERE owner_id = $1 AND status IN ('creating', 'running')",
                owner_id,
            )
            usage = Usage(
                sandboxes=len(memories),
                memory_bytes=sum(quantity_bytes(row["memory"]) for row in memories),
            )
            quota.admit(usage, quantity_bytes(request.resources.memory))
            row = await conn.fetchrow(_INSERT, *args)
        return _sandbox(row)

    async def mark_running(
        self,
        sandbox_id: str,
        endpoint: str,
        token: str,
        *,
        runtime_id: str,
        from_warm_pool: bool,
    ) -> Sandbox | None:
        """Record the live runtime; None when the row ended meanwhile (e.g. terminated).
        The lifetime counts from now: a slow start does not eat into it."""
        row = await self._pool.fetchrow(
            "UPDATE sandboxes SET status = 'running', endpoint = $2, token = $3,"
            " from_warm_pool = $4, runtime_id = $5,"
            " expires_at = now() + make_interval(secs => timeout)"
            f" WHERE id = $1 AND status = 'creating' RETURNING {_COLUMNS}",
            sandbox_id,
            endpoint,
            token,
            from_warm_pool,
            runtime_id,
        )
        return _sandbox(row) if row else None

    async def count_by_status(self) -> dict[str, int]:
        """Every status with its number of sandboxes (zero included)."""
        rows = await self._pool.fetch("SELECT status, count(*) AS n FROM sandboxes GROUP BY status")
        counts = {status.value: 0 for status in SandboxStatus}
        counts.update({row["status"]: row["n"] for row in rows})
        return counts

    async def hold(self, sandbox_id: str, runtime_id: str) -> HoldState:
        """Whether the sandbox runs (or may yet run) on `runtime_id`."""
        row = await self._pool.fetchrow(
            "SELECT status, runtime_id FROM sandboxes WHERE id = $1", sandbox_id
        )
        if row is None or row["status"] not in ("creating", "running"):
            return HoldState.RELEASED
        if row["runtime_id"] == runtime_id:
            return HoldState.HOLDS
        if row["status"] == "creating" and row["runtime_id"] is None:
            return HoldState.PENDING
        return HoldState.RELEASED

    async def runtime_id(self, sandbox_id: str) -> str | None:
        value: str | None = await self._pool.fetchval(
            "SELECT runtime_id FROM sandboxes WHERE id = $1", sandbox_id
        )
        return value

    async def set_expiry(self, sandbox_id: str, timeout: int) -> Sandbox | None:
        """expires_at = now + timeout for a live sandbox; None when it already ended."""
        row = await self._pool.fetchrow(
            "UPDATE sandboxes SET expires_at = now() + make_interval(secs => $2), timeout = $2"
            " WHERE id = $1 AND status IN ('creating', 'running')"
            f" RETURNING {_COLUMNS}",
            sandbox_id,
            float(timeout),
        )
        return _sandbox(row) if row else None

    async def page(
        self,
        owner_id: str | None,
        status: SandboxStatus | None,
        metadata: dict[str, str],
        limit: int,
        offset: int,
    ) -> tuple[list[Sandbox], int]:
        """One page, newest first, and the total matching; `owner_id=None` means everyone's."""
        where = (
            "($1::text IS NULL OR owner_id = $1) AND ($2::text IS NULL OR status = $2)"
            " AND metadata @> $3::jsonb"
        )
        args = (owner_id, status.value if status else None, json.dumps(metadata))
        async with self._pool.acquire() as conn:
            total: int = await conn.fetchval(f"SELECT count(*) FROM sandboxes WHERE {where}", *args)
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM sandboxes WHERE {where}"
                " ORDER BY created_at DESC, id LIMIT $4 OFFSET $5",
                *args,
                limit,
                offset,
            )
        return [_sandbox(row) for row in rows], total

    async def mark_ended(
        self, sandbox_id: str, status: SandboxStatus, reason: str | None
    ) -> Sandbox | None:
        """Record the end of a sandbox once; later calls leave the first outcome in place."""
        row = await self._pool.fetchrow(
            "UPDATE sandboxes SET status = $2, status_reason = $3, terminated_at = now(),"
            " endpoint = NULL, token = NULL"
            f" WHERE id = $1 AND status IN ('creating', 'running') RETURNING {_COLUMNS}",
            sandbox_id,
            status.value,
            reason,
        )
        return _sandbox(row) if row else None

    async def get(self, sandbox_id: str) -> Sandbox | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM sandboxes WHERE id = $1", sandbox_id
        )
        return _sandbox(row) if row else None

    async def expired(self, limit: int = 100) -> list[Sandbox]:
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM sandboxes WHERE status = 'running'"
            " AND expires_at < now() ORDER BY expires_at LIMIT $1",
            limit,
        )
        return [_sandbox(row) for row in rows]

    async def live(self) -> list[tuple[Sandbox, str | None]]:
        """Every sandbox not yet ended, with its runtime's id (None before it has one)."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS}, runtime_id FROM sandboxes WHERE status IN ('creating', 'running')"
        )
        return [(_sandbox(row), row["runtime_id"]) for row in rows]

    async def live_on_runtime(self, runtime_id: str) -> Sandbox | None:
        """The live sandbox running on `runtime_id` (its own id, or a warm one it adopted)."""
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM sandboxes WHERE status IN ('creating', 'running')"
            " AND coalesce(runtime_id, id) = $1 LIMIT 1",
            runtime_id,
        )
        return _sandbox(row) if row else None

    async def creators(self, sandbox_ids: list[str]) -> dict[str, int | None]:
        """The creating instance's key for each of these `creating` rows."""
        rows = await self._pool.fetch(
            "SELECT id, creator FROM sandboxes WHERE id = ANY($1) AND status = 'creating'",
            sandbox_ids,
        )
        return {row["id"]: row["creator"] for row in rows}

    async def connection_info(self, sandbox_id: str) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(
            "SELECT owner_id, status, endpoint, token FROM sandboxes WHERE id = $1", sandbox_id
        )
        return dict(row) if row else None
