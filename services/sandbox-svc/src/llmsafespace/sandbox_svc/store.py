"""The `sandboxes` table. Plain SQL; only this module spells it."""

import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from llmsafespace.contracts import (
    CreateSandboxRequest,
    NetworkAccess,
    PoolReservation,
    Resources,
    RuntimeId,
    Sandbox,
    SandboxStatus,
    SecurityLevel,
    quantity_bytes,
)
from llmsafespace.servicekit import locks

from .quota import LAYER_STORAGE, Quota, Usage

_COLUMNS = (
    "id, owner_id, status, status_reason, runtime, security_level, timeout, resources,"
    " metadata, from_warm_pool, created_at, expires_at, terminated_at, paused_at,"
    " paused_timeout, auto_resume"
)
# A live sandbox holds a runtime: being created, running, or paused (its runtime frozen).
_LIVE = "('creating', 'running', 'paused')"


_INSERT = (
    "INSERT INTO sandboxes (id, owner_id, status, runtime, security_level, timeout, resources,"
    " metadata, expires_at, creator, paused_timeout, auto_resume, env, template,"
    " network_access, warm_claim)"
    " VALUES ($1, $2, 'creating', $3, $4, $5, $6, $7, now() + make_interval(secs => $5::integer),"
    " $8, $9, $10, $11, $12, $13, $14)"
    f" RETURNING {_COLUMNS}"
)


@dataclass(frozen=True)
class Started:
    """The runtime a `creating` sandbox now runs on: its own, or a claimed warm one."""

    runtime_id: RuntimeId
    endpoint: str
    token: str
    from_warm_pool: bool


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
        paused_at=row["paused_at"],
        paused_timeout=row["paused_timeout"],
        auto_resume=row["auto_resume"],
    )


# What an owner holds, in one statement (one round trip on every ordinary user's create):
# the memory of each of its sandboxes counted by the running quota (creating or running),
# the workspace storage of each that holds one (paused too), what its warm pools reserve
# but `$2` (see `SandboxStore.reserve`), and how many ready template layers it keeps.
_USAGE = (
    "SELECT coalesce(held.memories, '{}') AS memories, coalesce(held.storages, '{}') AS storages,"
    " reserved.sandboxes, reserved.memory_bytes, reserved.storage_bytes, kept.layers FROM"
    " (SELECT array_agg(resources->>'memory') FILTER (WHERE status <> 'paused') AS memories,"
    "  array_agg(resources->>'ephemeralStorage') AS storages FROM sandboxes"
    "  WHERE owner_id = $1 AND status IN ('creating', 'running', 'paused')) held,"
    " (SELECT coalesce(sum(sandboxes), 0)::bigint AS sandboxes,"  # sum() is numeric
    "  coalesce(sum(memory_bytes), 0)::bigint AS memory_bytes,"
    "  coalesce(sum(storage_bytes), 0)::bigint AS storage_bytes"
    "  FROM pool_reservations WHERE owner_id = $1 AND pool IS DISTINCT FROM $2) reserved,"
    " (SELECT count(*) AS layers FROM templates WHERE owner_id = $1 AND status = 'ready') kept"
)


async def _usage(conn: asyncpg.Connection, owner_id: str, except_pool: str | None = None) -> Usage:
    """What the owner's sandboxes hold (memory: creating or running ones, counted by the
    running quota; storage: paused ones too), with what the owner's warm pools reserve (as
    warmpool-svc reported, see `reserve`) and its ready template layers (each at its
    builder's workspace size, `LAYER_STORAGE`: the most it can hold)."""
    row = await conn.fetchrow(_USAGE, owner_id, except_pool)
    memories: list[str] = row["memories"]
    storages: list[str] = row["storages"]
    layers = row["layers"] * quantity_bytes(LAYER_STORAGE)
    return Usage(
        sandboxes=len(memories) + row["sandboxes"],
        memory_bytes=sum(quantity_bytes(memory) for memory in memories) + row["memory_bytes"],
        storage_bytes=sum(quantity_bytes(size) for size in storages)
        + row["storage_bytes"]
        + layers,
    )


async def _lock_owner(conn: asyncpg.Connection, owner_id: str) -> None:
    """Serialise the owner's quota checks until the transaction ends."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))", locks.OWNER_QUOTA, owner_id
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
        *,
        warm_claim: bool = False,
    ) -> Sandbox:
        """The new row, `creating` (with `warm_claim`, marked as about to ask for a warm
        runtime: step 1 of the handover, see `ClaimWarmSandbox`). With a quota, the
        owner's live sandboxes and pool reservations are counted and the row inserted in
        one transaction under a per-owner advisory lock, so concurrent creates on any
        number of replicas cannot overshoot it together; without one, the insert is a
        single statement."""
        args = (
            sandbox_id,
            owner_id,
            request.runtime,
            request.security_level.value,
            request.timeout,
            request.resources.model_dump_json(by_alias=True),
            json.dumps(request.metadata),
            self._creator,
            request.paused_timeout,
            request.auto_resume,
            json.dumps(request.env),
            request.template,
            None
            if request.network_access is None
            else request.network_access.model_dump_json(by_alias=True),
            warm_claim,
        )
        if quota is None:
            return _sandbox(await self._pool.fetchrow(_INSERT, *args))
        async with self._pool.acquire() as conn, conn.transaction():
            await _lock_owner(conn, owner_id)
            quota.admit(
                await _usage(conn, owner_id),
                quantity_bytes(request.resources.memory),
                storage_bytes=quantity_bytes(request.resources.ephemeral_storage),
            )
            row = await conn.fetchrow(_INSERT, *args)
        return _sandbox(row)

    async def reserve(self, reservation: PoolReservation, quota: Quota | None) -> None:
        """Record what a warm pool reserves of its owner's quota (0 sandboxes: forget it),
        admitted first against the owner's live sandboxes and other pools' reservations.
        No owner lock taken here: warmpool-svc asks while it holds that lock itself, so no
        quota check of the owner runs meanwhile."""
        if reservation.sandboxes == 0:
            await self._pool.execute(
                "DELETE FROM pool_reservations WHERE pool = $1", reservation.pool
            )
            return
        async with self._pool.acquire() as conn, conn.transaction():
            if quota is not None:
                usage = await _usage(conn, reservation.owner_id, except_pool=reservation.pool)
                quota.admit(
                    usage,
                    reservation.memory_bytes,
                    reservation.sandboxes,
                    reservation.storage_bytes,
                )
            await conn.execute(
                "INSERT INTO pool_reservations"
                " (pool, owner_id, sandboxes, memory_bytes, storage_bytes)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (pool) DO UPDATE SET owner_id = $2,"
                " sandboxes = $3, memory_bytes = $4, storage_bytes = $5",
                reservation.pool,
                reservation.owner_id,
                reservation.sandboxes,
                reservation.memory_bytes,
                reservation.storage_bytes,
            )

    async def pause(self, sandbox: Sandbox, quota: Quota | None) -> Sandbox | None:
        """`running` → `paused` (its lifetime clock stops); None unless it was running. With
        a quota, the owner's paused sandboxes are counted under the owner's lock first."""
        async with self._pool.acquire() as conn, conn.transaction():
            if quota is not None:
                await _lock_owner(conn, sandbox.owner_id)
                paused = await conn.fetchval(
                    "SELECT count(*) FROM sandboxes WHERE owner_id = $1 AND status = 'paused'",
                    sandbox.owner_id,
                )
                quota.admit_paused(paused)
            row = await conn.fetchrow(
                "UPDATE sandboxes SET status = 'paused', paused_at = now()"
                f" WHERE id = $1 AND status = 'running' RETURNING {_COLUMNS}",
                sandbox.id,
            )
        return _sandbox(row) if row else None

    async def unpause(self, sandbox: Sandbox, quota: Quota | None) -> Sandbox | None:
        """`paused` → `running`, its expiry moved by the time it spent paused; None unless it
        was paused. With a quota, it must fit the running quota again (owner's lock held)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if quota is not None:
                await _lock_owner(conn, sandbox.owner_id)
                usage = await _usage(conn, sandbox.owner_id)  # its storage counted already
                quota.admit(usage, quantity_bytes(sandbox.resources.memory))
            row = await conn.fetchrow(
                "UPDATE sandboxes SET status = 'running',"
                " expires_at = expires_at + (now() - paused_at), paused_at = NULL"
                f" WHERE id = $1 AND status = 'paused' RETURNING {_COLUMNS}",
                sandbox.id,
            )
        return _sandbox(row) if row else None

    async def paused_too_long(self, limit: int = 100) -> list[Sandbox]:
        """Paused sandboxes past their `paused_timeout`."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM sandboxes WHERE status = 'paused'"
            " AND paused_at + make_interval(secs => paused_timeout) < now()"
            " ORDER BY paused_at LIMIT $1",
            limit,
        )
        return [_sandbox(row) for row in rows]

    async def mark_running(self, sandbox_id: str, started: Started) -> Sandbox | None:
        """Record the live runtime; None when the row ended meanwhile (e.g. terminated).
        Only a `creating` row moves, so a sandbox no longer `creating` can never adopt a
        warm runtime; adopting one settles its claim. The lifetime counts from now: a slow
        start does not eat into it."""
        row = await self._pool.fetchrow(
            "UPDATE sandboxes SET status = 'running', endpoint = $2, token = $3,"
            " from_warm_pool = $4, runtime_id = $5, warm_claim = warm_claim AND NOT $4,"
            " expires_at = now() + make_interval(secs => timeout)"
            f" WHERE id = $1 AND status = 'creating' RETURNING {_COLUMNS}",
            sandbox_id,
            started.endpoint,
            started.token,
            started.from_warm_pool,
            started.runtime_id,
        )
        return _sandbox(row) if row else None

    async def settle_claim(self, sandbox_id: str) -> None:
        """The sandbox's warm claim is settled: it missed, or was released."""
        await self._pool.execute(
            "UPDATE sandboxes SET warm_claim = false WHERE id = $1", sandbox_id
        )

    async def unsettled_claims(self, limit: int = 100) -> list[str]:
        """Sandboxes past `creating` whose warm claim is not settled: theirs to release."""
        rows = await self._pool.fetch(
            "SELECT id FROM sandboxes WHERE warm_claim AND status <> 'creating' LIMIT $1", limit
        )
        return [row["id"] for row in rows]

    async def count_by_status(self) -> dict[str, int]:
        """Every status with its number of sandboxes (zero included)."""
        rows = await self._pool.fetch("SELECT status, count(*) AS n FROM sandboxes GROUP BY status")
        counts = {status.value: 0 for status in SandboxStatus}
        counts.update({row["status"]: row["n"] for row in rows})
        return counts

    async def runtime_id(self, sandbox_id: str) -> RuntimeId:
        """The runtime the sandbox runs on: a claimed warm one, else its own id."""
        value: str | None = await self._pool.fetchval(
            "SELECT coalesce(runtime_id, id) FROM sandboxes WHERE id = $1", sandbox_id
        )
        return RuntimeId(value or sandbox_id)

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
            f" WHERE id = $1 AND status IN {_LIVE} RETURNING {_COLUMNS}",
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
        """Every sandbox not yet ended that holds a runtime, with the runtime's id (None
        before it has one); not those paused by snapshot (see `snapshot_paused`)."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS}, runtime_id FROM sandboxes WHERE status IN {_LIVE}"
            " AND pause_snapshot IS NULL"
        )
        return [(_sandbox(row), row["runtime_id"]) for row in rows]

    async def snapshot_paused(self) -> set[str]:
        """Live sandboxes paused by snapshot: no runtime (paused), or a new one being
        restored (resuming) under their own id."""
        rows = await self._pool.fetch(
            f"SELECT id FROM sandboxes WHERE status IN {_LIVE} AND pause_snapshot IS NOT NULL"
        )
        return {row["id"] for row in rows}

    async def live_on_runtime(self, runtime_id: str) -> Sandbox | None:
        """The live sandbox running on `runtime_id` (its own id, or a warm one it adopted);
        not one paused by snapshot (its runtime is gone on purpose, or being restored)."""
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM sandboxes WHERE status IN {_LIVE}"
            " AND pause_snapshot IS NULL AND coalesce(runtime_id, id) = $1 LIMIT 1",
            runtime_id,
        )
        return _sandbox(row) if row else None

    async def own_creating(self) -> list[Sandbox]:
        """The `creating` rows this store's instance inserted."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM sandboxes WHERE status = 'creating' AND creator = $1",
            self._creator,
        )
        return [_sandbox(row) for row in rows]

    async def creators(self, sandbox_ids: list[str]) -> dict[str, int | None]:
        """The creating instance's key for each of these `creating` rows."""
        rows = await self._pool.fetch(
            "SELECT id, creator FROM sandboxes WHERE id = ANY($1) AND status = 'creating'",
            sandbox_ids,
        )
        return {row["id"]: row["creator"] for row in rows}

    async def release_runtime(self, sandbox_id: str, snapshot_id: str) -> bool:
        """A paused sandbox now lives in the internal snapshot `snapshot_id`: its runtime
        is to go. False when it is no longer paused (ended meanwhile)."""
        row = await self._pool.fetchrow(
            "UPDATE sandboxes SET pause_snapshot = $2, endpoint = NULL, token = NULL,"
            " runtime_id = NULL WHERE id = $1 AND status = 'paused' RETURNING id",
            sandbox_id,
            snapshot_id,
        )
        return row is not None

    async def pause_snapshot(self, sandbox_id: str) -> str | None:
        """The internal snapshot holding the sandbox's workspace while it has no runtime."""
        value: str | None = await self._pool.fetchval(
            "SELECT pause_snapshot FROM sandboxes WHERE id = $1", sandbox_id
        )
        return value

    async def attach_runtime(self, sandbox_id: str, endpoint: str, token: str) -> Sandbox | None:
        """A resumed sandbox's new runtime (its own id) is restored: record it. None when
        the sandbox ended meanwhile."""
        row = await self._pool.fetchrow(
            "UPDATE sandboxes SET endpoint = $2, token = $3, runtime_id = id,"
            " pause_snapshot = NULL WHERE id = $1 AND status = 'running'"
            f" AND pause_snapshot IS NOT NULL RETURNING {_COLUMNS}",
            sandbox_id,
            endpoint,
            token,
        )
        return _sandbox(row) if row else None

    async def runtime_inputs(
        self, sandbox_id: str
    ) -> tuple[dict[str, str], str | None, NetworkAccess | None]:
        """What a new runtime for the sandbox is made of, beyond its view: the env it was
        created with, its template's name and its network access."""
        row = await self._pool.fetchrow(
            "SELECT env, template, network_access FROM sandboxes WHERE id = $1", sandbox_id
        )
        if row is None:
            return {}, None, None
        access = row["network_access"]
        network = None if access is None else NetworkAccess.model_validate_json(access)
        return json.loads(row["env"]), row["template"], network

    async def connection_info(self, sandbox_id: str) -> dict[str, Any] | None:
        row = await self._pool.fetchrow(
            "SELECT owner_id, status, endpoint, token, auto_resume FROM sandboxes WHERE id = $1",
            sandbox_id,
        )
        return dict(row) if row else None
