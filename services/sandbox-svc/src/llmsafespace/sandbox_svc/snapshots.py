"""Snapshots: a running sandbox's workspace (with the packages installed into it), env,
metadata, runtime and template, stored as content-addressed chunks; a new sandbox starts from one.

The workspace is streamed from the sandbox's agent as its tar.gz archive (the download
the files API uses), inflated on the fly and cut into fixed-size chunks named by their
sha256: a chunk already stored is not stored again, so snapshots of similar workspaces
share storage. A restore streams the chunks back, deflated, into the new sandbox's
`/workspace`. Memory stays flat: one chunk at a time. The interpreter's memory is not
part of a snapshot.
"""

import asyncio
import contextlib
import functools
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import structlog

from llmsafespace.contracts import (
    CHUNK_BYTES,
    CreateSnapshot,
    ErrorCode,
    ListSnapshots,
    Pagination,
    RestoreSnapshot,
    Role,
    Sandbox,
    SandboxStatus,
    ServiceError,
    Snapshot,
    SnapshotPage,
    SnapshotPoolsQuery,
    SnapshotRef,
    commands,
    new_snapshot_id,
)
from llmsafespace.runtime import AgentClient, Download, DriverError
from llmsafespace.servicekit import Bus, locks

from .chunks import ChunkStore, ChunkStoreError, digest
from .quota import SnapshotQuota
from .refusals import not_running
from .snapshot_store import SnapshotStore, StoredSnapshot
from .store import SandboxStore

log = structlog.get_logger()

WORKSPACE = "/workspace"
SNAPSHOT_CHUNK = 1024 * 1024  # bytes of the uncompressed tar per chunk
SWEEP_BATCH = 1000  # chunk names looked up (under the exclusive lock) at a time
_GZIP = 31  # zlib wbits for a gzip stream


async def _inflated(download: Download) -> AsyncIterator[bytes]:
    """The archive's tar bytes, at most SNAPSHOT_CHUNK at a time (a bomb stays small)."""
    inflate = zlib.decompressobj(_GZIP)
    while (data := await download.read()) is not None:
        while data:
            yield inflate.decompress(data, SNAPSHOT_CHUNK)
            data = inflate.unconsumed_tail
    yield inflate.flush()


async def _fixed(pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    buffer = bytearray()
    async for piece in pieces:
        buffer += piece
        while len(buffer) >= SNAPSHOT_CHUNK:
            yield bytes(buffer[:SNAPSHOT_CHUNK])
            del buffer[:SNAPSHOT_CHUNK]
    if buffer:
        yield bytes(buffer)


@dataclass
class _Capture:
    """A capture as it goes: every chunk's name in order, the bytes, and the chunks (and
    their bytes) this capture was first to store."""

    chunks: list[str] = field(default_factory=list)
    size: int = 0
    stored: int = 0
    new: list[str] = field(default_factory=list)


class Snapshots:
    def __init__(
        self,
        sandboxes: SandboxStore,
        snapshots: SnapshotStore,
        chunks: ChunkStore,
        bus: Bus,
        quota: SnapshotQuota | None = None,
    ) -> None:
        self._sandboxes = sandboxes
        self._snapshots = snapshots
        self._chunks = chunks
        self._bus = bus
        self._quota = quota

    async def create(self, command: CreateSnapshot) -> Snapshot:
        caller = command.caller
        sandbox = await self._sandboxes.get(command.sandbox_id)
        if sandbox is None or not caller.can_access(sandbox.owner_id):
            raise ServiceError(ErrorCode.NOT_FOUND, f"sandbox {command.sandbox_id} not found")
        info = await self._sandboxes.connection_info(sandbox.id)
        if info is None or info["status"] != SandboxStatus.RUNNING or not info["endpoint"]:
            raise not_running(sandbox)
        try:
            saved = await self._take(
                sandbox,
                command.request.name,
                info["endpoint"],
                info["token"],
                None if caller.role is Role.ADMIN else self._quota,
            )
        except ServiceError as exc:
            if exc.code is ErrorCode.SANDBOX_NOT_RUNNING:  # say how, once the row does
                now = await self._sandboxes.get(sandbox.id) or sandbox
                if now.status is not SandboxStatus.RUNNING:
                    raise not_running(now, "during the snapshot") from exc
            raise
        return saved.public

    async def take_internal(self, sandbox: Sandbox, endpoint: str, token: str) -> str:
        """Keep a sandbox's workspace for its pause (not listed, not counted): its id."""
        saved = await self._take(sandbox, "pause", endpoint, token, None, internal=True)
        return saved.public.id

    async def _take(
        self,
        sandbox: Sandbox,
        name: str,
        endpoint: str,
        token: str,
        quota: SnapshotQuota | None,
        *,
        internal: bool = False,
    ) -> StoredSnapshot:
        """Capture and record one snapshot. With a quota, an owner already at it is refused
        before any chunk is stored, and a capture stops once its bytes pass what is left
        (the insert checks again, under the owner's lock, for captures running side by
        side). Whatever ends it early, the chunks it stored that no snapshot uses go."""
        admit: Callable[[int], None] | None = None
        if quota is not None:
            count, used = await self._snapshots.usage(sandbox.owner_id)
            quota.admit(count, used, 0)
            admit = functools.partial(quota.admit, count, used)
        capture = _Capture()
        try:
            async with self._snapshots.locked(locks.SNAPSHOT_CHUNKS, shared=True):
                await self._capture(endpoint, token, capture, admit)
                env, template, _ = await self._sandboxes.runtime_inputs(sandbox.id)
                snapshot = Snapshot(
                    id=new_snapshot_id(),
                    owner_id=sandbox.owner_id,
                    name=name,
                    sandbox_id=sandbox.id,
                    runtime=sandbox.runtime,
                    template=template,
                    metadata=sandbox.metadata,
                    env_names=[],
                    size_bytes=capture.size,
                    stored_bytes=capture.stored,
                    created_at=datetime.now(UTC),  # the row's own time replaces it
                )
                saved = await self._snapshots.insert(
                    snapshot,
                    StoredSnapshot(
                        public=snapshot,
                        env=env,
                        chunks=capture.chunks,
                    ),
                    quota,
                    internal=internal,
                )
        except BaseException:
            await asyncio.shield(self._sweep(capture.new))
            raise
        log.info(
            "snapshot_created",
            snapshot_id=snapshot.id,
            size=capture.size,
            stored=capture.stored,
            internal=internal,
        )
        return saved

    async def _capture(
        self,
        endpoint: str,
        token: str,
        capture: _Capture,
        admit: Callable[[int], None] | None,
    ) -> None:
        """Stream the workspace into chunks, recorded in `capture` as they are stored;
        `admit(bytes so far)` raises once they are too many."""
        try:
            client = await AgentClient.connect(endpoint, token)
            try:
                download = await client.open_read(WORKSPACE, archive=True)
                async for chunk in _fixed(_inflated(download)):
                    capture.size += len(chunk)
                    if admit is not None:
                        admit(capture.size)
                    name = digest(chunk)
                    if await self._chunks.put(name, chunk):
                        capture.stored += len(chunk)
                        capture.new.append(name)
                    capture.chunks.append(name)
            finally:
                await client.close()
        except DriverError as exc:  # the sandbox's agent went: deleted, expired or died
            raise ServiceError(
                ErrorCode.SANDBOX_NOT_RUNNING, f"the sandbox stopped during the snapshot: {exc}"
            ) from exc
        except ChunkStoreError as exc:
            raise ServiceError(ErrorCode.RUNTIME_UNAVAILABLE, f"snapshot failed: {exc}") from exc

    async def _sweep(self, chunks: list[str]) -> None:
        """Delete those of a failed capture's new `chunks` that no snapshot uses. The
        exclusive lock waits for the captures in flight, which may reuse them, to record
        their rows first. Best effort: a failure is logged, the capture's own error stands."""
        if not chunks:
            return
        try:
            async with self._snapshots.locked(locks.SNAPSHOT_CHUNKS, shared=False):
                for name in await self._snapshots.unreferenced(chunks):
                    await self._chunks.delete(name)
        except (ChunkStoreError, asyncpg.PostgresError) as exc:
            log.warning("snapshot_chunks_not_swept", chunks=len(chunks), error=str(exc))
            return
        log.info("snapshot_chunks_swept", chunks=len(chunks))

    async def sweep_unused(self) -> bool:
        """Delete every stored chunk no snapshot uses: those a capture stored before its
        process died (its own sweep above never ran), or a deletion left when the chunk
        store failed. Each batch of names is looked up and swept under the exclusive lock,
        taken only while no capture runs (a capture in flight, on any replica, holds it
        shared: its chunks have no row yet, and it may be reusing any stored chunk); a
        chunk stored after the listing is not in it. Returns whether the whole store was
        swept (False: a capture was running, try again later)."""
        swept, whole = 0, False
        async with contextlib.aclosing(self._chunks.listing(SWEEP_BATCH)) as batches:
            async for names in batches:
                async with self._snapshots.locked(
                    locks.SNAPSHOT_CHUNKS, shared=False, wait=False
                ) as alone:
                    if not alone:
                        break
                    for name in await self._snapshots.unreferenced(names):
                        await self._chunks.delete(name)
                        swept += 1
            else:
                whole = True
        log.info("snapshot_chunks_unused_swept", chunks=swept, whole=whole)
        return whole

    async def source(self, caller_ref: SnapshotRef) -> StoredSnapshot:
        """The snapshot, if the caller may use it; 404 otherwise."""
        found = await self._snapshots.get(caller_ref.snapshot_id)
        if found is None or not caller_ref.caller.can_access(found.public.owner_id):
            raise ServiceError(ErrorCode.NOT_FOUND, f"snapshot {caller_ref.snapshot_id} not found")
        return found

    async def get(self, ref: SnapshotRef) -> Snapshot:
        return (await self.source(ref)).public

    async def list(self, query: ListSnapshots) -> SnapshotPage:
        owner = None if query.caller.role is Role.ADMIN else query.caller.user_id
        snapshots, total = await self._snapshots.page(owner, query.limit, query.offset)
        return SnapshotPage(
            snapshots=snapshots,
            pagination=Pagination(limit=query.limit, offset=query.offset, total=total),
        )

    async def delete(self, ref: SnapshotRef) -> Snapshot:
        """Refused (409) while a warm pool is built from it: the pool could not refill."""
        snapshot = await self.source(ref)
        query = SnapshotPoolsQuery(snapshot_id=snapshot.public.id)
        pools = await self._bus.request(commands.WARMPOOL_SNAPSHOT_POOLS, query)
        if pools.pools:
            raise ServiceError(
                ErrorCode.CONFLICT,
                f"snapshot {snapshot.public.id} is in use by warm pools:"
                f" {', '.join(pools.pools[:10])}",
                {"warmPools": pools.pools},
            )
        await self._drop(snapshot.public.id)
        return snapshot.public

    async def internal(self, snapshot_id: str) -> StoredSnapshot | None:
        """A paused sandbox's internal snapshot."""
        return await self._snapshots.get(snapshot_id, internal=True)

    async def drop_internal(self, snapshot_id: str) -> None:
        """Delete a paused sandbox's internal snapshot (resumed, or ended); idempotent."""
        await self._drop(snapshot_id)

    async def _drop(self, snapshot_id: str) -> None:
        """Delete the row, then the chunks only it used. The row goes first and stays gone
        if the chunk store fails meanwhile: the snapshot is deleted all the same, and the
        chunks left behind are logged (a resume or an end must not fail on them)."""
        async with self._snapshots.locked(locks.SNAPSHOT_CHUNKS, shared=False):
            unused = await self._snapshots.delete(snapshot_id)
            try:
                for name in unused:
                    await self._chunks.delete(name)
            except ChunkStoreError as exc:
                log.warning(
                    "snapshot_chunks_not_swept",
                    snapshot_id=snapshot_id,
                    chunks=len(unused),
                    error=str(exc),
                )
        log.info("snapshot_deleted", snapshot_id=snapshot_id)

    async def restore_into(self, command: RestoreSnapshot) -> Snapshot:
        """Restore a snapshot the caller may use into a warm pool's runtime; a runtime or
        chunk store that fails is 503 (warmpool-svc then discards that runtime)."""
        source = await self.source(
            SnapshotRef(caller=command.caller, snapshot_id=command.snapshot_id)
        )
        try:
            await self.restore(source, command.endpoint, command.token)
        except (DriverError, OSError, ChunkStoreError) as exc:
            raise await self.restore_refusal(command.snapshot_id) from exc
        return source.public

    async def restore_refusal(self, snapshot_id: str) -> ServiceError:
        """Why a restore failed, for its caller: 409 when the snapshot was deleted
        meanwhile (its chunks went with it), else 503 (the runtime or the chunk store)."""
        if await self._snapshots.get(snapshot_id) is None:
            return ServiceError(
                ErrorCode.CONFLICT, f"snapshot {snapshot_id} was deleted during the restore"
            )
        return ServiceError(
            ErrorCode.RUNTIME_UNAVAILABLE, f"restoring snapshot {snapshot_id} failed"
        )

    async def restore(self, snapshot: StoredSnapshot, endpoint: str, token: str) -> None:
        """Stream the snapshot's workspace into a new sandbox's `/workspace`."""
        deflate = zlib.compressobj(6, zlib.DEFLATED, _GZIP)
        client = await AgentClient.connect(endpoint, token)
        try:
            upload = await client.open_write(WORKSPACE, archive=True)
            for name in snapshot.chunks:
                await _send(upload.send, deflate.compress(await self._chunks.get(name)))
            await _send(upload.send, deflate.flush())
            await upload.finish(None)
        finally:
            await client.close()


async def _send(send: Callable[[bytes], Awaitable[None]], data: bytes) -> None:
    for start in range(0, len(data), CHUNK_BYTES):
        await send(data[start : start + CHUNK_BYTES])
