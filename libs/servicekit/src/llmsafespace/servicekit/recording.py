"""A pool of one connection that records what a store asks of it, for unit tests that
count a store's round trips (a transaction is a call of its own)."""

import asyncpg


class RecordingPool:
    """Stands where a store takes an `asyncpg.Pool`; `calls` names each method used."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.calls: list[str] = []

    def acquire(self) -> "RecordingPool":
        return self

    async def __aenter__(self) -> "RecordingPool":
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    def __getattr__(self, name: str) -> object:
        self.calls.append(name)
        return getattr(self._conn, name)
