"""Snapshots: a sandbox's workspace, env, metadata and runtime kept after it ends
(`Sandbox.snapshot(name)` takes one). `AsyncSnapshot` is the implementation; `Snapshot`
runs it for synchronous callers."""

from typing import Self
from urllib.parse import quote

from .config import ClientConfig
from .models import SnapshotInfo, SnapshotPage
from .portal import run_sync
from .transport import call


class AsyncSnapshot:
    """A snapshot by id. `await AsyncSnapshot.get(id)`, `.list()`; then `delete()`. Each
    call is one short HTTP exchange; start a sandbox from one with
    `AsyncSandbox.create(snapshot=id)`."""

    def __init__(self, config: ClientConfig, info: SnapshotInfo) -> None:
        self._config = config
        self.info = info

    @property
    def id(self) -> str:
        return self.info.id

    @classmethod
    async def get(
        cls, snapshot_id: str, *, api_url: str | None = None, api_key: str | None = None
    ) -> Self:
        """The snapshot `snapshot_id` (raises `NotFoundError` if there is none for you)."""
        config = ClientConfig.resolve(api_url, api_key)
        return cls(
            config, SnapshotInfo.model_validate(await call(config, "GET", _path(snapshot_id)))
        )

    @staticmethod
    async def list(
        *, limit: int = 20, offset: int = 0, api_url: str | None = None, api_key: str | None = None
    ) -> SnapshotPage:
        """One page of your snapshots (an admin's: everyone's), newest first."""
        config = ClientConfig.resolve(api_url, api_key)
        page = {"limit": limit, "offset": offset}
        return SnapshotPage.model_validate(await call(config, "GET", "snapshots", params=page))

    async def delete(self) -> None:
        """Delete the snapshot (refused with `ConflictError` while a warm pool is built
        from it); the storage no other snapshot shares is freed."""
        await call(self._config, "DELETE", _path(self.id))


class Snapshot:
    """A snapshot for synchronous code (see `AsyncSnapshot`)."""

    def __init__(self, snapshot: AsyncSnapshot) -> None:
        self._snapshot = snapshot

    @property
    def id(self) -> str:
        return self._snapshot.id

    @property
    def info(self) -> SnapshotInfo:
        return self._snapshot.info

    @classmethod
    def get(
        cls, snapshot_id: str, *, api_url: str | None = None, api_key: str | None = None
    ) -> Self:
        """The snapshot `snapshot_id`."""
        return cls(run_sync(AsyncSnapshot.get(snapshot_id, api_url=api_url, api_key=api_key)))

    @staticmethod
    def list(
        *, limit: int = 20, offset: int = 0, api_url: str | None = None, api_key: str | None = None
    ) -> SnapshotPage:
        """One page of your snapshots, newest first."""
        return run_sync(
            AsyncSnapshot.list(limit=limit, offset=offset, api_url=api_url, api_key=api_key)
        )

    def delete(self) -> None:
        """Delete the snapshot."""
        run_sync(self._snapshot.delete())


def _path(snapshot_id: str) -> str:
    return "snapshots/" + quote(snapshot_id, safe="")
