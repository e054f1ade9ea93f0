"""`sandbox.files`: streamed uploads and downloads, listings, deletes and whole
directories (as tar.gz). Large files never sit whole in memory on either side.

A path is absolute, inside /workspace or /tmp, and takes no trailing slash (a
`ValidationError` naming it) but for the directory `list` lists. An upload (a file, or a
directory's tar.gz) is at most 100 MiB (the server's `EXEC_SVC_MAX_FILE_BYTES`): past
it, a `ValidationError` with code `payload_too_large`."""

import asyncio
import hashlib
import io
import os
import re
import tarfile
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from llmsafespace.contracts import FileInfo, FileListing, FileWritten

from .errors import LLMSafeSpaceError
from .portal import Portal
from .transport import Transport

CHUNK = 256 * 1024
TRANSFER_TIMEOUT = 600.0
Progress = Callable[[int], None]
"""Called with the number of bytes transferred so far."""
Data = bytes | str | IO[bytes] | AsyncIterable[bytes]
_RANGE_SIZE = re.compile(r"bytes (?:\d+-\d+|\*)/(\d+)")
_RANGE_NOT_SATISFIABLE = 416


@dataclass(frozen=True)
class FilePart:
    """Part of a file: `data` read from byte `offset`, and the whole file's `size`."""

    data: bytes
    offset: int
    size: int

    @property
    def end(self) -> int:
        """The byte after the part: where the next one starts."""
        return self.offset + len(self.data)


class FileList(list[FileInfo]):
    """A directory's entries, in path order (a list, as `list` always returned), and
    `truncated`: True when the directory held more than one listing carries (896 KiB of
    the entries' JSON, some 4,500 entries with short names). The entries kept are the
    first by name, and with `recursive` each directory's come before those below it: list
    a subdirectory, or `download_dir` it, for the rest."""

    def __init__(self, entries: Iterable[FileInfo] = (), *, truncated: bool = False) -> None:
        super().__init__(entries)
        self.truncated = truncated


class AsyncFiles:
    """The files of one sandbox (paths: see the module's docstring)."""

    def __init__(self, transport: Transport, sandbox_id: str) -> None:
        self._transport = transport
        self._base = f"sandboxes/{quote(sandbox_id, safe='')}/files"

    def _url(self, path: str) -> str:
        return f"{self._base}/{quote(path.lstrip('/'))}"

    async def write(
        self, path: str, data: Data, *, progress: Progress | None = None
    ) -> FileWritten:
        """Write `data` to `path` (parent directories are created); replaces atomically.
        At most 100 MiB (more: `payload_too_large`)."""
        headers: dict[str, str] = {}
        if isinstance(data, str):
            data = data.encode()
        if isinstance(data, bytes):
            headers["x-content-sha256"] = hashlib.sha256(data).hexdigest()
            body: Any = _counted(_pieces(io.BytesIO(data)), progress)
            headers["content-length"] = str(len(data))
        elif isinstance(data, AsyncIterable):
            body = _counted(data, progress)
        else:
            body = _counted(_pieces(data), progress)
        reply = await self._transport.send(
            "PUT", self._url(path), content=body, headers=headers, timeout=TRANSFER_TIMEOUT
        )
        return FileWritten.model_validate(reply)

    async def upload(
        self, local: str | Path, path: str, *, progress: Progress | None = None
    ) -> FileWritten:
        """Stream a local file to `path`, at most 100 MiB (more: `payload_too_large`)."""
        with await asyncio.to_thread(open, local, "rb") as source:
            headers = {"content-length": str(os.fstat(source.fileno()).st_size)}
            reply = await self._transport.send(
                "PUT",
                self._url(path),
                content=_counted(_pieces(source), progress),
                headers=headers,
                timeout=TRANSFER_TIMEOUT,
            )
        return FileWritten.model_validate(reply)

    async def read(self, path: str) -> bytes:
        """The whole file (for large ones, `download` streams to disk instead)."""
        buffer = io.BytesIO()
        await self.download(path, buffer)
        return buffer.getvalue()

    async def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return (await self.read(path)).decode(encoding)

    async def read_part(self, path: str, offset: int = 0, length: int = CHUNK) -> FilePart:
        """At most `length` bytes of `path` from `offset`, and the file's size: a `Range`
        request, and never more than `length` bytes held, even from a server that sends
        the whole file. Past the end the part is empty."""
        if offset < 0 or length < 1:
            raise ValueError("offset must be >= 0 and length >= 1")
        headers = {"range": f"bytes={offset}-{offset + length - 1}"}
        try:
            async with self._transport.stream(
                "GET", self._url(path), headers=headers, timeout=TRANSFER_TIMEOUT
            ) as response:
                ranged = response.status_code == 206
                size = _size(response.headers, ranged)
                skip = 0 if ranged else offset  # a whole file: the part is further in
                data = bytearray()
                async for piece in response.aiter_bytes():  # as they come: no read-ahead
                    if skip >= len(piece):
                        skip -= len(piece)
                        continue
                    data += piece[skip : skip + length - len(data)]
                    skip = 0
                    if len(data) >= length:
                        break
        except LLMSafeSpaceError as exc:
            if exc.status != _RANGE_NOT_SATISFIABLE:
                raise
            async with self._transport.stream("HEAD", self._url(path)) as response:
                size = int(response.headers.get("content-length", 0))
            return FilePart(b"", offset, size)
        return FilePart(bytes(data), offset, size)

    async def download(
        self, path: str, destination: str | Path | IO[bytes], *, progress: Progress | None = None
    ) -> int:
        """Stream `path` into a local file (or a binary file object); the bytes written."""
        async with self._transport.stream(
            "GET", self._url(path), timeout=TRANSFER_TIMEOUT
        ) as response:
            if isinstance(destination, str | Path):
                with await asyncio.to_thread(open, destination, "wb") as target:
                    return await _drain(response.aiter_bytes(CHUNK), target, progress)
            return await _drain(response.aiter_bytes(CHUNK), destination, progress)

    async def list(self, path: str = "/workspace", *, recursive: bool = False) -> FileList:
        """The entries of a directory (with `recursive`, of its whole tree); check
        `.truncated` before taking them for all of it (see `FileList`)."""
        params = {"path": path, "recursive": str(recursive).lower()}
        reply = await self._transport.request("GET", self._base, params=params)
        listing = FileListing.model_validate(reply)
        return FileList(listing.files, truncated=listing.truncated)

    async def remove(self, path: str, *, recursive: bool = False) -> None:
        """Delete a file, or a directory (non-empty ones only with `recursive`)."""
        params = {"recursive": "true"} if recursive else None
        await self._transport.request("DELETE", self._url(path), params=params)

    async def upload_dir(
        self, local: str | Path, path: str, *, progress: Progress | None = None
    ) -> FileWritten:
        """Pack a local directory as tar.gz (in a temp file) and unpack it into `path`; the
        tar.gz is at most 100 MiB (more: `payload_too_large`)."""
        with tempfile.TemporaryFile() as packed:
            size = await asyncio.to_thread(_pack, Path(local), packed)
            reply = await self._transport.send(
                "POST",
                f"{self._base}/archive",
                params={"path": path},
                content=_counted(_pieces(packed), progress),
                headers={"content-length": str(size)},
                timeout=TRANSFER_TIMEOUT,
            )
        return FileWritten.model_validate(reply)

    async def download_dir(
        self, path: str, local: str | Path, *, progress: Progress | None = None
    ) -> None:
        """Fetch a directory as tar.gz and unpack it into the local directory `local`."""
        with tempfile.TemporaryFile() as packed:
            async with self._transport.stream(
                "GET", f"{self._base}/archive", params={"path": path}, timeout=TRANSFER_TIMEOUT
            ) as response:
                await _drain(response.aiter_bytes(CHUNK), packed, progress)
            await asyncio.to_thread(_unpack, packed, Path(local))


def _size(headers: Mapping[str, str], ranged: bool) -> int:
    """The whole file's size: from `Content-Range` (`bytes a-b/size`) of a part, from
    `Content-Length` of a whole file."""
    if ranged:
        match = _RANGE_SIZE.fullmatch(headers.get("content-range", ""))
        if match is not None:
            return int(match.group(1))
    return int(headers.get("content-length", 0))


def _pack(local: Path, packed: IO[bytes]) -> int:
    """`local`'s contents as tar.gz into `packed` (rewound); its size."""
    with tarfile.open(fileobj=packed, mode="w:gz") as archive:
        for entry in sorted(local.iterdir()):
            archive.add(entry, arcname=entry.name)
    size = packed.tell()
    packed.seek(0)
    return size


def _unpack(packed: IO[bytes], target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    packed.seek(0)
    with tarfile.open(fileobj=packed, mode="r:gz") as archive:
        archive.extractall(target, filter="data")


async def _pieces(source: IO[bytes]) -> AsyncIterator[bytes]:
    while piece := source.read(CHUNK):
        yield piece


async def _counted(pieces: AsyncIterable[bytes], progress: Progress | None) -> AsyncIterator[bytes]:
    done = 0
    async for piece in pieces:
        done += len(piece)
        yield piece
        if progress is not None:
            progress(done)


async def _drain(pieces: AsyncIterator[bytes], target: IO[bytes], progress: Progress | None) -> int:
    done = 0
    async for piece in pieces:
        target.write(piece)
        done += len(piece)
        if progress is not None:
            progress(done)
    return done


class Files:
    """`Sandbox.files`: `AsyncFiles` run for synchronous code (same methods)."""

    def __init__(self, portal: Portal, files: AsyncFiles) -> None:
        self._portal = portal
        self._files = files

    def write(self, path: str, data: Data, *, progress: Progress | None = None) -> FileWritten:
        return self._portal.call(self._files.write(path, data, progress=progress))

    def upload(
        self, local: str | Path, path: str, *, progress: Progress | None = None
    ) -> FileWritten:
        return self._portal.call(self._files.upload(local, path, progress=progress))

    def read(self, path: str) -> bytes:
        return self._portal.call(self._files.read(path))

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self._portal.call(self._files.read_text(path, encoding))

    def read_part(self, path: str, offset: int = 0, length: int = CHUNK) -> FilePart:
        return self._portal.call(self._files.read_part(path, offset, length))

    def download(
        self, path: str, destination: str | Path | IO[bytes], *, progress: Progress | None = None
    ) -> int:
        return self._portal.call(self._files.download(path, destination, progress=progress))

    def list(self, path: str = "/workspace", *, recursive: bool = False) -> FileList:
        return self._portal.call(self._files.list(path, recursive=recursive))

    def remove(self, path: str, *, recursive: bool = False) -> None:
        self._portal.call(self._files.remove(path, recursive=recursive))

    def upload_dir(
        self, local: str | Path, path: str, *, progress: Progress | None = None
    ) -> FileWritten:
        return self._portal.call(self._files.upload_dir(local, path, progress=progress))

    def download_dir(
        self, path: str, local: str | Path, *, progress: Progress | None = None
    ) -> None:
        self._portal.call(self._files.download_dir(path, local, progress=progress))
