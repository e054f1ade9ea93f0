"""A driver whose sandboxes exist only in memory: for unit tests of the services.

It keeps the `Driver` contract — ids must be new, `destroy` is idempotent, `list` shows
what is alive — without starting anything: a created sandbox has an endpoint nobody
answers on. `capacity` bounds how many may be alive at once (a create beyond it fails
as a real runtime out of room does), and only the `runtimes` given exist.
"""

import secrets

from llmsafespace.contracts.ids import RuntimeId

from .driver import Handle, RuntimeSpec, RuntimeStats
from .errors import DriverError, RuntimeUnavailable, UnknownRuntime


class MemoryDriver:
    """Sandboxes as entries in a dict; `created` records every spec, in order."""

    def __init__(
        self, runtimes: tuple[str, ...] = ("python:3.11",), capacity: int | None = None
    ) -> None:
        self._runtimes = runtimes
        self._capacity = capacity
        self._alive: dict[RuntimeId, Handle] = {}
        self.created: list[RuntimeSpec] = []

    async def create(self, spec: RuntimeSpec) -> Handle:
        if spec.runtime not in self._runtimes:
            raise UnknownRuntime(f"unknown runtime {spec.runtime}")
        if spec.runtime_id in self._alive:
            raise DriverError(f"sandbox {spec.runtime_id} exists")
        if self._capacity is not None and len(self._alive) >= self._capacity:
            raise RuntimeUnavailable(f"no room for another sandbox ({self._capacity} alive)")
        handle = Handle(
            runtime_id=spec.runtime_id,
            owner=spec.owner,
            endpoint=f"memory://{spec.runtime_id}",
            token=secrets.token_hex(16),
        )
        self._alive[spec.runtime_id] = handle
        self.created.append(spec)
        return handle

    async def destroy(self, runtime_id: RuntimeId) -> None:
        self._alive.pop(runtime_id, None)

    async def list(self) -> list[Handle]:
        return list(self._alive.values())

    async def inspect(self, runtime_id: RuntimeId) -> Handle | None:
        return self._alive.get(runtime_id)

    async def stats(self, runtime_id: RuntimeId) -> RuntimeStats | None:
        return RuntimeStats() if runtime_id in self._alive else None

    async def close(self) -> None:
        """Nothing to release."""

    def protections(self) -> dict[str, object]:
        return {"isolation": "none (in memory)"}
