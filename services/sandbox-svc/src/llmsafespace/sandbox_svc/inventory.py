"""Reading and adjusting sandboxes without changing their state: list, status, timeout,
the catalog of runtimes and profiles, and what warm pools reserve of their owners' quota."""

import asyncio
from datetime import UTC, datetime

from llmsafespace.contracts import (
    Catalog,
    ListSandboxes,
    Pagination,
    PoolReservation,
    Role,
    Sandbox,
    SandboxPage,
    SandboxRef,
    SandboxStatus,
    SandboxStatusReport,
    SecurityLevel,
    SetSandboxTimeout,
)
from llmsafespace.runtime import Driver

from .lifecycle import Lifecycle
from .quota import Quota
from .refusals import not_running
from .store import SandboxStore


class Inventory:
    def __init__(
        self,
        store: SandboxStore,
        driver: Driver,
        lifecycle: Lifecycle,
        catalog: Catalog,
        quota: Quota | None = None,
    ) -> None:
        self._quota = quota  # what warm pools' reservations are admitted against
        self._store = store
        self._driver = driver
        self._lifecycle = lifecycle
        self._catalog = catalog

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    async def list(self, query: ListSandboxes) -> SandboxPage:
        owner = None if query.caller.role is Role.ADMIN else query.caller.user_id
        sandboxes, total = await self._store.page(
            owner, query.status, query.metadata, query.limit, query.offset
        )
        return SandboxPage(
            sandboxes=sandboxes,
            pagination=Pagination(limit=query.limit, offset=query.offset, total=total),
        )

    async def status(self, ref: SandboxRef) -> SandboxStatusReport:
        """The row's state with the runtime's view: alive or not, and its live usage."""
        sandbox = await self._lifecycle.get(ref)
        alive, stats = False, None
        if sandbox.status in (SandboxStatus.RUNNING, SandboxStatus.PAUSED):
            runtime_id = await self._store.runtime_id(sandbox.id)
            handle, stats = await asyncio.gather(
                self._driver.inspect(runtime_id), self._driver.stats(runtime_id)
            )
            alive = handle is not None
        usage = stats.model_dump() if stats is not None and alive else {}
        ended = sandbox.terminated_at or datetime.now(UTC)
        return SandboxStatusReport(
            id=sandbox.id,
            status=sandbox.status,
            status_reason=sandbox.status_reason,
            runtime_alive=alive,
            uptime_seconds=max(0.0, (ended - sandbox.created_at).total_seconds()),
            created_at=sandbox.created_at,
            expires_at=sandbox.expires_at,
            from_warm_pool=sandbox.from_warm_pool,
            **usage,
            missing_protections=_missing_protections(self._driver, sandbox.security_level),
        )

    async def set_timeout(self, command: SetSandboxTimeout) -> Sandbox:
        sandbox = await self._lifecycle.get(
            SandboxRef(caller=command.caller, sandbox_id=command.sandbox_id)
        )
        updated = await self._store.set_expiry(sandbox.id, command.timeout)
        if updated is None:
            raise not_running(sandbox)
        return updated

    async def reserve(self, reservation: PoolReservation) -> PoolReservation:
        """Admit and record what a warm pool reserves (warmpool-svc asks on every change
        of an ordinary user's pool, inside it: a refusal undoes the change)."""
        await self._store.reserve(reservation, self._quota)
        return reservation


def _missing_protections(driver: Driver, level: SecurityLevel) -> list[str]:
    """What the driver says sandboxes of ``level`` lack on this host ([] if it does not say)."""
    by_level = driver.protections().get("missingByLevel")
    missing = by_level.get(level.value) if isinstance(by_level, dict) else None
    return [str(name) for name in missing] if isinstance(missing, list) else []
