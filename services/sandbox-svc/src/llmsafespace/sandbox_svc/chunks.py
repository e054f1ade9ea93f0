"""Where snapshot chunks live: content-addressed blobs (named by their sha256) behind one
small interface, with two implementations: a local directory and S3-compatible object
storage (for clusters; boto3, its credentials from the usual AWS variables). Whatever
the backend raises when it fails (a disk error, S3 refusing or out of reach) comes out
as one `ChunkStoreError`, so callers catch one type, not each backend's."""

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

_DIGEST = re.compile(r"[0-9a-f]{64}")  # fullmatch: `$` would admit a trailing newline
T = TypeVar("T")


class ChunkStoreError(Exception):
    """The chunk store could not store, read or delete a chunk."""


async def _in_thread(
    failures: tuple[type[Exception], ...], call: Callable[..., T], *args: Any
) -> T:
    """`call(*args)` off the event loop, the backend's `failures` as ChunkStoreError."""
    try:
        return await asyncio.to_thread(call, *args)
    except failures as exc:
        raise ChunkStoreError(f"chunk store: {exc}") from exc


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ChunkStore(Protocol):
    async def put(self, name: str, data: bytes) -> bool:
        """Store a chunk under its digest `name`; False when it was already there."""
        ...

    async def get(self, name: str) -> bytes:
        """A stored chunk's bytes."""
        ...

    async def delete(self, name: str) -> None:
        """Remove a chunk; idempotent."""
        ...

    def listing(self, batch: int) -> AsyncGenerator[list[str], None]:
        """The names of the stored chunks, at most `batch` at a time, in no set order."""
        ...


class LocalChunkStore:
    """Chunks as files `<root>/<first two hex digits>/<digest>`, written atomically."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, name: str) -> Path:
        if not _DIGEST.fullmatch(name):
            raise ValueError(f"not a chunk name: {name!r}")
        return self._root / name[:2] / name

    def _put(self, name: str, data: bytes) -> bool:
        path = self._path(name)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as partial:
            partial.write(data)
        os.replace(partial.name, path)
        return True

    async def put(self, name: str, data: bytes) -> bool:
        return await _in_thread((OSError,), self._put, name, data)

    async def get(self, name: str) -> bytes:
        return await _in_thread((OSError,), self._path(name).read_bytes)

    async def delete(self, name: str) -> None:
        await _in_thread((OSError,), self._path(name).unlink, True)

    def _directories(self) -> list[Path]:
        if not self._root.is_dir():
            return []
        return sorted(path for path in self._root.iterdir() if path.is_dir())

    @staticmethod
    def _names(directory: Path) -> list[str]:
        with os.scandir(directory) as entries:
            return [entry.name for entry in entries if _DIGEST.fullmatch(entry.name)]

    async def listing(self, batch: int) -> AsyncGenerator[list[str], None]:
        names: list[str] = []
        for directory in await _in_thread((OSError,), self._directories):
            names += await _in_thread((OSError,), self._names, directory)
            while len(names) >= batch:
                yield names[:batch]
                del names[:batch]
        if names:
            yield names


_S3_FAILURES = (BotoCoreError, ClientError)  # refused, or out of reach


class S3ChunkStore:
    """Chunks as objects `<prefix><digest>` in a bucket of an S3-compatible service."""

    def __init__(
        self, bucket: str, prefix: str = "chunks/", endpoint_url: str | None = None
    ) -> None:
        self._bucket = bucket
        self._prefix = prefix
        self._client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, name: str) -> str:
        if not _DIGEST.fullmatch(name):
            raise ValueError(f"not a chunk name: {name!r}")
        return self._prefix + name

    def _put(self, name: str, data: bytes) -> bool:
        key = self._key(name)
        try:
            self._client.head_object(Bucket=self._bucket, Key=key)
            return False
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise
        self._client.put_object(Bucket=self._bucket, Key=key, Body=data)
        return True

    def _get(self, name: str) -> bytes:
        reply = self._client.get_object(Bucket=self._bucket, Key=self._key(name))
        data: bytes = reply["Body"].read()
        return data

    def _delete(self, name: str) -> None:
        self._client.delete_object(Bucket=self._bucket, Key=self._key(name))

    def _page(self, batch: int, token: str | None) -> tuple[list[str], str | None]:
        """One page of chunk names, and the token of the next (None: the last)."""
        more = {"ContinuationToken": token} if token else {}
        reply = self._client.list_objects_v2(
            Bucket=self._bucket, Prefix=self._prefix, MaxKeys=batch, **more
        )
        keys = (item["Key"].removeprefix(self._prefix) for item in reply.get("Contents", []))
        names = [name for name in keys if _DIGEST.fullmatch(name)]
        return names, reply.get("NextContinuationToken") if reply.get("IsTruncated") else None

    async def put(self, name: str, data: bytes) -> bool:
        return await _in_thread(_S3_FAILURES, self._put, name, data)

    async def get(self, name: str) -> bytes:
        return await _in_thread(_S3_FAILURES, self._get, name)

    async def delete(self, name: str) -> None:
        await _in_thread(_S3_FAILURES, self._delete, name)

    async def listing(self, batch: int) -> AsyncGenerator[list[str], None]:
        token: str | None = None
        while True:
            names, token = await _in_thread(_S3_FAILURES, self._page, batch, token)
            if names:
                yield names
            if token is None:
                return
