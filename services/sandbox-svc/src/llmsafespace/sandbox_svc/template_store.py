"""The `templates` table (and which live sandboxes use one). Plain SQL; only this module
spells it."""

import asyncpg

from llmsafespace.contracts import (
    Caller,
    ErrorCode,
    Role,
    ServiceError,
    Template,
    TemplateSpec,
    TemplateStatus,
    unknown_template,
)
from llmsafespace.servicekit import locks

from .quota import Quota

_COLUMNS = (
    "name, owner_id, spec, status, reason, log_tail, build_sandbox_id, build_execution_id,"
    " layer, created_at, updated_at"
)
_LIVE = "('creating', 'running')"


def _template(row: asyncpg.Record) -> Template:
    return Template(
        name=row["name"],
        owner_id=row["owner_id"],
        spec=TemplateSpec.model_validate_json(row["spec"]),
        status=TemplateStatus(row["status"]),
        reason=row["reason"],
        log_tail=row["log_tail"],
        build_sandbox_id=row["build_sandbox_id"],
        build_execution_id=row["build_execution_id"],
        layer=row["layer"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class TemplateStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def insert(
        self, owner_id: str, spec: TemplateSpec, quota: Quota | None = None
    ) -> Template:
        """A new `building` row; a taken name is a 409. With a quota, the owner's templates
        are counted and the row inserted in one transaction under the owner's quota lock
        (the one sandbox creates take), so concurrent creates cannot overshoot it."""
        args = (spec.name, owner_id, spec.model_dump_json(by_alias=True), spec.public)
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if quota is not None:
                    await conn.execute(
                        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                        locks.OWNER_QUOTA,
                        owner_id,
                    )
                    kept = await conn.fetchval(
                        "SELECT count(*) FROM templates WHERE owner_id = $1", owner_id
                    )
                    quota.admit_template(kept)
                row = await conn.fetchrow(
                    "INSERT INTO templates (name, owner_id, spec, public, status)"
                    f" VALUES ($1, $2, $3, $4, 'building') RETURNING {_COLUMNS}",
                    *args,
                )
        except asyncpg.UniqueViolationError:
            raise ServiceError(
                ErrorCode.CONFLICT, f"template {spec.name!r} already exists", {"name": spec.name}
            ) from None
        return _template(row)

    async def started(self, name: str, sandbox_id: str, execution_id: str) -> Template | None:
        row = await self._pool.fetchrow(
            "UPDATE templates SET build_sandbox_id = $2, build_execution_id = $3,"
            f" updated_at = now() WHERE name = $1 RETURNING {_COLUMNS}",
            name,
            sandbox_id,
            execution_id,
        )
        return None if row is None else _template(row)

    async def finish(
        self,
        name: str,
        status: TemplateStatus,
        reason: str | None,
        log_tail: str,
        layer: str | None,
    ) -> Template | None:
        """Record a build's outcome; None if the template went meanwhile."""
        row = await self._pool.fetchrow(
            "UPDATE templates SET status = $2, reason = $3, log_tail = $4, layer = $5,"
            f" updated_at = now() WHERE name = $1 AND status = 'building' RETURNING {_COLUMNS}",
            name,
            status.value,
            reason,
            log_tail,
            layer,
        )
        return None if row is None else _template(row)

    async def get(self, name: str) -> Template | None:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM templates WHERE name = $1", name)
        return None if row is None else _template(row)

    async def visible(self, user_id: str, everything: bool) -> list[Template]:
        """The user's templates and the public ones (all of them for ``everything``)."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM templates WHERE $2 OR owner_id = $1 OR public ORDER BY name",
            user_id,
            everything,
        )
        return [_template(row) for row in rows]

    async def users(self, name: str) -> list[str]:
        """Live sandboxes made from the template."""
        rows = await self._pool.fetch(
            f"SELECT id FROM sandboxes WHERE template = $1 AND status IN {_LIVE} ORDER BY id",
            name,
        )
        return [row["id"] for row in rows]

    async def delete(self, name: str) -> Template | None:
        """Remove the row unless a live sandbox uses it (None: gone, or in use)."""
        row = await self._pool.fetchrow(
            f"DELETE FROM templates WHERE name = $1 AND NOT EXISTS (SELECT 1 FROM sandboxes"
            f" WHERE template = $1 AND status IN {_LIVE}) RETURNING {_COLUMNS}",
            name,
        )
        return None if row is None else _template(row)

    async def ready(self, caller: Caller, name: str) -> Template:
        """The ready template ``name`` the caller may use; otherwise a 400 naming the
        ready ones (another user's private template is as unknown as a missing one)."""
        template = await self.get(name)
        if template is not None and not (
            template.spec.public or caller.can_access(template.owner_id)
        ):
            template = None
        if template is not None and template.status is TemplateStatus.READY and template.layer:
            return template
        visible = await self.visible(caller.user_id, caller.role is Role.ADMIN)
        available = [t.name for t in visible if t.status is TemplateStatus.READY]
        if template is None:
            raise unknown_template(name, available)
        because = f": {template.reason}" if template.reason else ""
        message = f"template {name!r} is {template.status.value}{because}"
        details = {"status": template.status.value, "available": available}
        raise ServiceError(
            ErrorCode.INVALID_REQUEST, message, {"fields": {"template": message}, **details}
        )
