"""The `warm_pools` and `warm_sandboxes` tables. Plain SQL; only this module spells them."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import structlog
from pydantic import ValidationError

from llmsafespace.contracts import (
    ErrorCode,
    Resources,
    RuntimeId,
    SecurityLevel,
    ServiceError,
    WarmPoolSpec,
    WarmSandboxState,
)
from llmsafespace.servicekit import locks

from .pool_quota import PoolLimits

log = structlog.get_logger()

# Tells sandbox-svc what an ordinary user's pool reserves (None: the pool is gone); called
# inside the pool's transaction, under the owner's quota lock, before it commits.
Reserve = Callable[[str, str, WarmPoolSpec | None], Awaitable[None]]

_POOL_COLUMNS = (
    "name, owner_id, shared, spec, desired, last_scale_time, last_error, created_at, updated_at"
)


@dataclass(frozen=True)
class Demand:
    """Claims a pool saw: how many lately, the latest, and whether that is recent enough
    to hold the pool's size (within `scaleDownDelay`)."""

    recent: int
    last_claim: datetime | None
    busy: bool


def stored_spec(row: asyncpg.Record) -> WarmPoolSpec | None:
    """The pool's spec as stored, or None (logged) when it no longer validates: a pool
    stored before a rule it breaks (a name reserved since, like `status`) is left alone
    by the replenisher and the listing, so it cannot stop the other pools being tended
    or listed (README, warm pools: how an operator removes it)."""
    try:
        return WarmPoolSpec.model_validate_json(row["spec"])
    except ValidationError as exc:
        log.warning("warm_pool_spec_invalid", pool=row["name"], error=str(exc)[:500])
        return None


def resources_key(resources: Resources) -> str:
    """The JSON claims and pools are matched on (jsonb equality)."""
    return resources.model_dump_json(by_alias=True)


# The claim (see `PoolStore.claim`). The ledger row is inserted after the runtime is
# picked, so a sandbox that has one already (claimed or released before) makes the insert
# fail and with it the assignment: never two runtimes for one sandbox.
_CLAIM = (
    "WITH picked AS ("
    "   SELECT w.id FROM warm_sandboxes w JOIN warm_pools p ON p.name = w.pool"
    "   WHERE w.state = 'ready' AND w.runtime = $1 AND w.security_level = $2"
    "   AND w.resources = $3::jsonb AND (p.shared OR p.owner_id = $4)"
    "   AND p.spec->>'template' IS NOT DISTINCT FROM $6"
    "   AND p.spec->>'snapshot' IS NOT DISTINCT FROM $7"
    "   ORDER BY w.ready_at LIMIT 1 FOR UPDATE OF w SKIP LOCKED"
    "), assigned AS ("
    "   UPDATE warm_sandboxes w SET state = 'assigned', assigned_at = now(), assigned_to = $5"
    "   FROM picked WHERE w.id = picked.id AND w.state = 'ready'"
    "   RETURNING w.id, w.pool, w.endpoint, w.token"
    "), ledger AS ("
    "   INSERT INTO warm_claims (sandbox_id, runtime_id) SELECT $5, (SELECT id FROM assigned)"
    ")"
    " SELECT id, pool, endpoint, token FROM assigned"
)


class PoolStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    # Pools -------------------------------------------------------------------------------

    async def create_pool(
        self,
        key: str,
        owner_id: str,
        shared: bool,
        spec: WarmPoolSpec,
        limits: PoolLimits | None = None,
        reserve: Reserve | None = None,
    ) -> asyncpg.Record:
        """The new pool (its row named by `key`, see pool_names); with limits, admitted
        against the owner's other pools first, and an ordinary user's pool `reserve`d
        before the transaction commits (all under the owner's quota lock, as sandbox
        creates are)."""
        async with self._pool.acquire() as conn, conn.transaction():
            if limits is not None:
                limits.admit(await _other_pools(conn, owner_id, except_pool=None))
            try:
                row: asyncpg.Record = await conn.fetchrow(
                    "INSERT INTO warm_pools (name, owner_id, shared, spec, runtime,"
                    " security_level, resources, desired) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                    f" RETURNING {_POOL_COLUMNS}",
                    key,
                    owner_id,
                    shared,
                    spec.model_dump_json(by_alias=True),
                    spec.runtime,
                    spec.security_level.value,
                    resources_key(spec.resources),
                    spec.min_size,
                )
            except asyncpg.UniqueViolationError as exc:
                raise ServiceError(
                    ErrorCode.CONFLICT,
                    f"warm pool {spec.name!r} already exists",
                    {"name": spec.name},
                ) from exc
            if reserve is not None and not shared:
                await _lock(conn, owner_id)
                await reserve(key, owner_id, spec)
        return row

    async def get_pool(self, name: str) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._pool.fetchrow(
            f"SELECT {_POOL_COLUMNS} FROM warm_pools WHERE name = $1", name
        )
        return row

    async def pools_named(self, name: str) -> list[asyncpg.Record]:
        """Every pool a client named `name` (any owner's), shared ones first."""
        rows: list[asyncpg.Record] = await self._pool.fetch(
            f"SELECT {_POOL_COLUMNS} FROM warm_pools WHERE spec->>'name' = $1"
            " ORDER BY shared DESC, created_at",
            name,
        )
        return rows

    async def pools(self, owner_id: str | None = None) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._pool.fetch(
            f"SELECT {_POOL_COLUMNS} FROM warm_pools"
            " WHERE $1::text IS NULL OR owner_id = $1 ORDER BY name",
            owner_id,
        )
        return rows

    async def reserve_again(self, name: str, reserve: Reserve) -> None:
        """Report an ordinary user's pool's reservation again, under its owner's quota
        lock (a change meanwhile reports its own after this one)."""
        async with self._pool.acquire() as conn, conn.transaction():
            owner_id = await conn.fetchval(
                "SELECT owner_id FROM warm_pools WHERE name = $1 AND NOT shared", name
            )
            if owner_id is None:
                return
            await _lock(conn, owner_id)
            row = await conn.fetchrow("SELECT name, spec FROM warm_pools WHERE name = $1", name)
            spec = None if row is None else stored_spec(row)
            if spec is not None:  # an invalid one keeps what it reported last
                await reserve(name, owner_id, spec)

    async def snapshot_pools(self, snapshot_id: str) -> list[str]:
        """The pools built from the snapshot ``snapshot_id``."""
        rows = await self._pool.fetch(
            "SELECT spec->>'name' AS name FROM warm_pools WHERE spec->>'snapshot' = $1 ORDER BY 1",
            snapshot_id,
        )
        return [row["name"] for row in rows]

    async def template_pools(self, template: str) -> list[str]:
        """The pools made from ``template``."""
        rows = await self._pool.fetch(
            "SELECT spec->>'name' AS name FROM warm_pools WHERE spec->>'template' = $1 ORDER BY 1",
            template,
        )
        return [row["name"] for row in rows]

    async def update_pool(
        self,
        key: str,
        owner_id: str,
        spec: WarmPoolSpec,
        limits: PoolLimits | None = None,
        reserve: Reserve | None = None,
    ) -> asyncpg.Record | None:
        async with self._pool.acquire() as conn, conn.transaction():
            row: asyncpg.Record | None = await conn.fetchrow(
                "UPDATE warm_pools SET spec = $2, updated_at = now() WHERE name = $1"
                f" RETURNING {_POOL_COLUMNS}",
                key,
                spec.model_dump_json(by_alias=True),
            )
            if reserve is not None and row is not None and not row["shared"]:
                await _lock(conn, owner_id)
                await reserve(key, owner_id, spec)
        return row

    async def delete_pool(
        self, name: str, reserve: Reserve | None = None
    ) -> tuple[asyncpg.Record | None, list[RuntimeId]]:
        """Remove the pool and its unassigned sandboxes' rows; returns those runtime ids."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"DELETE FROM warm_pools WHERE name = $1 RETURNING {_POOL_COLUMNS}", name
            )
            if reserve is not None and row is not None and not row["shared"]:
                await _lock(conn, row["owner_id"])
                await reserve(name, row["owner_id"], None)
            ids = await conn.fetch(
                "DELETE FROM warm_sandboxes WHERE pool = $1 AND state IN ('pending', 'ready')"
                " RETURNING id",
                name,
            )
        return row, [RuntimeId(r["id"]) for r in ids]

    async def record_scale(
        self, name: str, desired: int, error: str | None, last_claim: datetime | None = None
    ) -> None:
        """The pool's size now (`lastScaleTime` moves when it changes), its last start
        error, and the latest claim seen (kept: assigned rows are pruned once gone)."""
        await self._pool.execute(
            "UPDATE warm_pools SET last_error = $3,"
            " last_scale_time = CASE WHEN desired <> $2 THEN now() ELSE last_scale_time END,"
            " desired = $2, last_claim_at = GREATEST(last_claim_at, $4) WHERE name = $1",
            name,
            desired,
            error,
            last_claim,
        )

    async def demand(self, name: str, seconds: int) -> Demand:
        """Claims from the pool in the last `seconds`, and the latest claim ever recorded."""
        row = await self._pool.fetchrow(
            "SELECT count(*) FILTER (WHERE w.assigned_at > now() - make_interval(secs => $2))"
            "   AS recent,"
            " GREATEST(max(w.assigned_at), (SELECT last_claim_at FROM warm_pools WHERE name = $1))"
            "   AS last_claim,"
            " now() - make_interval(secs => $2) AS quiet_since"
            " FROM warm_sandboxes w WHERE w.pool = $1 AND w.state = 'assigned'",
            name,
            float(seconds),
        )
        last_claim: datetime | None = row["last_claim"]
        busy = last_claim is not None and last_claim > row["quiet_since"]
        return Demand(recent=row["recent"], last_claim=last_claim, busy=busy)

    async def counts(self, names: list[str]) -> dict[str, dict[WarmSandboxState, int]]:
        rows = await self._pool.fetch(
            "SELECT pool, state, count(*) AS n FROM warm_sandboxes"
            " WHERE pool = ANY($1::text[]) GROUP BY pool, state",
            names,
        )
        counts: dict[str, dict[WarmSandboxState, int]] = {name: {} for name in names}
        for row in rows:
            counts[row["pool"]][WarmSandboxState(row["state"])] = row["n"]
        return counts

    # Warm sandboxes ----------------------------------------------------------------------

    async def claim(
        self,
        runtime: str,
        security_level: SecurityLevel,
        resources: Resources,
        user_id: str,
        sandbox_id: str,
        template: str | None = None,
        snapshot: str | None = None,
    ) -> asyncpg.Record | None:
        """Step 2 of the handover (see `ClaimWarmSandbox`), in one statement (one round
        trip on every warm create's path): hand `sandbox_id` the oldest matching ready
        sandbox (its row locked, others skip it, flipped to `assigned`) and record the
        claim in the ledger. A sandbox's second claim answers what its first got; a
        released one's is a miss: its ledger row exists already, so the statement fails
        as a whole (nothing assigned) and the earlier claim is read instead."""
        async with self._pool.acquire() as conn:
            try:
                row: asyncpg.Record | None = await conn.fetchrow(
                    _CLAIM,
                    runtime,
                    security_level.value,
                    resources_key(resources),
                    user_id,
                    sandbox_id,
                    template,
                    snapshot,
                )
            except asyncpg.UniqueViolationError:
                return await _claimed_before(conn, sandbox_id)
        return row

    async def release(self, sandbox_id: str) -> RuntimeId | None:
        """Step 4: the claim for `sandbox_id` is released (recorded even if none came yet,
        so a late one misses); the runtime it had assigned leaves the pool's rows and is
        returned, for the caller to destroy (None: nothing, or released before)."""
        async with self._pool.acquire() as conn, conn.transaction():
            runtime_id: str | None = await conn.fetchval(
                "INSERT INTO warm_claims (sandbox_id, released) VALUES ($1, true)"
                " ON CONFLICT (sandbox_id) DO UPDATE SET released = true RETURNING runtime_id",
                sandbox_id,
            )
            if runtime_id is None:
                return None
            gone: str | None = await conn.fetchval(
                "DELETE FROM warm_sandboxes WHERE id = $1 AND state = 'assigned' RETURNING id",
                runtime_id,
            )
        return None if gone is None else RuntimeId(gone)

    async def forget_claims(self, days: int) -> None:
        """Drop ledger rows older than `days` (a claim is answered in seconds or never)."""
        await self._pool.execute(
            "DELETE FROM warm_claims WHERE claimed_at < now() - make_interval(days => $1)", days
        )

    async def insert_pending(self, runtime_id: RuntimeId, pool: str, spec: WarmPoolSpec) -> None:
        await self._pool.execute(
            "INSERT INTO warm_sandboxes (id, pool, runtime, security_level, resources, state)"
            " VALUES ($1, $2, $3, $4, $5, 'pending')",
            runtime_id,
            pool,
            spec.runtime,
            spec.security_level.value,
            resources_key(spec.resources),
        )

    async def mark_ready(self, runtime_id: RuntimeId, endpoint: str, token: str) -> bool:
        """False when the row went meanwhile (its pool was deleted): the caller destroys it."""
        status = await self._pool.execute(
            "UPDATE warm_sandboxes SET state = 'ready', ready_at = now(), endpoint = $2,"
            " token = $3 WHERE id = $1 AND state = 'pending'",
            runtime_id,
            endpoint,
            token,
        )
        return bool(status == "UPDATE 1")

    async def remove(self, runtime_id: RuntimeId) -> None:
        await self._pool.execute("DELETE FROM warm_sandboxes WHERE id = $1", runtime_id)

    async def take_pending(self, pool: str) -> list[RuntimeId]:
        """Rows left `pending` by a replenisher that died (call with the pool's lock held)."""
        rows = await self._pool.fetch(
            "DELETE FROM warm_sandboxes WHERE pool = $1 AND state = 'pending' RETURNING id", pool
        )
        return [RuntimeId(row["id"]) for row in rows]

    async def count_expired(self, pool: str, ttl: int) -> int:
        """Ready sandboxes older than `ttl` seconds (still claimable until taken)."""
        count: int = await self._pool.fetchval(
            "SELECT count(*) FROM warm_sandboxes WHERE pool = $1 AND state = 'ready'"
            " AND ready_at < now() - make_interval(secs => $2)",
            pool,
            float(ttl),
        )
        return count

    async def take_expired(self, pool: str, ttl: int) -> list[RuntimeId]:
        """Ready sandboxes older than `ttl` seconds, removed from the pool in one statement."""
        rows = await self._pool.fetch(
            "DELETE FROM warm_sandboxes WHERE pool = $1 AND state = 'ready'"
            " AND ready_at < now() - make_interval(secs => $2) RETURNING id",
            pool,
            float(ttl),
        )
        return [RuntimeId(row["id"]) for row in rows]

    async def take_excess(self, pool: str, count: int) -> list[RuntimeId]:
        """Remove up to `count` of the oldest ready sandboxes (not locked by a claim)."""
        rows = await self._pool.fetch(
            "DELETE FROM warm_sandboxes WHERE id IN ("
            "  SELECT id FROM warm_sandboxes WHERE pool = $1 AND state = 'ready'"
            "  ORDER BY ready_at LIMIT $2 FOR UPDATE SKIP LOCKED) RETURNING id",
            pool,
            count,
        )
        return [RuntimeId(row["id"]) for row in rows]

    async def assigned(self) -> set[RuntimeId]:
        """Runtimes handed to sandboxes (theirs now: ended with them, or released)."""
        rows = await self._pool.fetch("SELECT id FROM warm_sandboxes WHERE state = 'assigned'")
        return {RuntimeId(row["id"]) for row in rows}

    async def known_ids(self) -> set[RuntimeId]:
        """Every runtime id with a row."""
        rows = await self._pool.fetch("SELECT id FROM warm_sandboxes")
        return {RuntimeId(row["id"]) for row in rows}


async def _claimed_before(conn: asyncpg.Connection, sandbox_id: str) -> asyncpg.Record | None:
    """What an earlier claim for the sandbox was handed, unless it was released since."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT w.id, w.pool, w.endpoint, w.token FROM warm_claims c"
        " JOIN warm_sandboxes w ON w.id = c.runtime_id AND w.state = 'assigned'"
        " WHERE c.sandbox_id = $1 AND NOT c.released FOR UPDATE OF c",
        sandbox_id,
    )
    return row


async def _lock(conn: asyncpg.Connection, owner_id: str) -> None:
    """Hold the owner's quota lock until the transaction ends (sandbox-svc's quota checks
    take it too, so none reads the owner's reservations while they change)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))", locks.OWNER_QUOTA, owner_id
    )


async def _other_pools(conn: asyncpg.Connection, owner_id: str, except_pool: str | None) -> int:
    """How many other pools the owner has, with the owner's quota lock held until the
    transaction ends."""
    await _lock(conn, owner_id)
    count: int = await conn.fetchval(
        "SELECT count(*) FROM warm_pools WHERE owner_id = $1 AND name IS DISTINCT FROM $2",
        owner_id,
        except_pool,
    )
    return count
