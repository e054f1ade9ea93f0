"""Warm pools: named sets of ready sandboxes that `create` claims from. `AsyncWarmPool` is
the implementation; `WarmPool` runs it for synchronous callers."""

from typing import Any, Self
from urllib.parse import quote

from llmsafespace.contracts import Resources

from .config import ClientConfig
from .models import WarmPoolInfo, WarmPoolStatus, resources_body
from .portal import run_sync
from .transport import call


class AsyncWarmPool:
    """A warm pool by name. `await AsyncWarmPool.create(...)`, `.get(name)`, `.list()`;
    then `scale`, `status`, `delete`. Each call is one short HTTP exchange."""

    def __init__(self, config: ClientConfig, info: WarmPoolInfo) -> None:
        self._config = config
        self.info = info

    @property
    def name(self) -> str:
        return self.info.name

    async def refresh(self) -> Self:
        """Fetch the pool afresh."""
        self.info = WarmPoolInfo.model_validate(await call(self._config, "GET", _path(self.name)))
        return self

    @classmethod
    async def create(
        cls,
        name: str,
        *,
        runtime: str | None = None,
        template: str | None = None,
        snapshot: str | None = None,
        min_size: int = 1,
        max_size: int | None = None,
        security_level: str = "standard",
        resources: Resources | dict[str, Any] | None = None,
        api_url: str | None = None,
        api_key: str | None = None,
    ) -> Self:
        """Define a pool that keeps `min_size` (up to `max_size`) sandboxes ready, of
        `runtime` (default `python:3.11`), of a `template` (with its runtime), or with a
        `snapshot`'s workspace restored (its runtime and template; yours only): then
        `create(snapshot=id)` with the pool's `resources` claims one."""
        config = ClientConfig.resolve(api_url, api_key)
        body: dict[str, Any] = {
            "name": name,
            "minSize": min_size,
            "securityLevel": security_level,
        }
        if runtime is not None:
            body["runtime"] = runtime
        if template is not None:
            body["template"] = template
        if snapshot is not None:
            body["snapshot"] = snapshot
        if max_size is not None:
            body["maxSize"] = max_size
        if resources is not None:
            body["resources"] = resources_body(resources)
        reply = await call(config, "POST", "warmpools", json=body)
        return cls(config, WarmPoolInfo.model_validate(reply))

    @classmethod
    async def get(
        cls, name: str, *, api_url: str | None = None, api_key: str | None = None
    ) -> Self:
        """The pool called `name` (raises `NotFoundError` if there is none)."""
        config = ClientConfig.resolve(api_url, api_key)
        return cls(config, WarmPoolInfo.model_validate(await call(config, "GET", _path(name))))

    @staticmethod
    async def list(*, api_url: str | None = None, api_key: str | None = None) -> list[WarmPoolInfo]:
        """Every pool the caller can see."""
        reply = await call(ClientConfig.resolve(api_url, api_key), "GET", "warmpools")
        return [WarmPoolInfo.model_validate(item) for item in _items(reply)]

    async def scale(self, *, min_size: int | None = None, max_size: int | None = None) -> Self:
        """Change the pool's bounds (`PATCH` with only the sizes given)."""
        body: dict[str, int] = {}
        if min_size is not None:
            body["minSize"] = min_size
        if max_size is not None:
            body["maxSize"] = max_size
        self.info = WarmPoolInfo.model_validate(
            await call(self._config, "PATCH", _path(self.name), json=body)
        )
        return self

    async def status(self) -> WarmPoolStatus:
        """How many sandboxes are ready, and what else the server reports."""
        return WarmPoolStatus.model_validate(
            await call(self._config, "GET", _path(self.name) + "/status")
        )

    async def delete(self) -> None:
        """Delete the pool; its ready sandboxes are destroyed."""
        await call(self._config, "DELETE", _path(self.name))


class WarmPool:
    """A warm pool for synchronous code (see `AsyncWarmPool`)."""

    def __init__(self, pool: AsyncWarmPool) -> None:
        self._pool = pool

    @property
    def name(self) -> str:
        return self._pool.name

    @property
    def info(self) -> WarmPoolInfo:
        return self._pool.info

    @classmethod
    def create(cls, name: str, **options: Any) -> Self:
        """Define a pool (see `AsyncWarmPool.create`)."""
        return cls(run_sync(AsyncWarmPool.create(name, **options)))

    @classmethod
    def get(cls, name: str, *, api_url: str | None = None, api_key: str | None = None) -> Self:
        """The pool called `name`."""
        return cls(run_sync(AsyncWarmPool.get(name, api_url=api_url, api_key=api_key)))

    @staticmethod
    def list(*, api_url: str | None = None, api_key: str | None = None) -> list[WarmPoolInfo]:
        """Every pool the caller can see."""
        return run_sync(AsyncWarmPool.list(api_url=api_url, api_key=api_key))

    def scale(self, *, min_size: int | None = None, max_size: int | None = None) -> Self:
        """Change the pool's bounds."""
        run_sync(self._pool.scale(min_size=min_size, max_size=max_size))
        return self

    def status(self) -> WarmPoolStatus:
        """How many sandboxes are ready."""
        return run_sync(self._pool.status())

    def delete(self) -> None:
        """Delete the pool."""
        run_sync(self._pool.delete())


def _path(name: str) -> str:
    return "warmpools/" + quote(name, safe="")


def _items(reply: Any) -> list[Any]:
    """A list reply, bare or wrapped (`{"warmPools": [...]}` or similar)."""
    if isinstance(reply, list):
        return reply
    if isinstance(reply, dict):
        for value in reply.values():
            if isinstance(value, list):
                return value
    return []
