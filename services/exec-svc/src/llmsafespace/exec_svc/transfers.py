"""Files in sandboxes: listings, deletes, and chunked transfers over NATS.

A transfer is opened by a command (queue group: any instance); the instance that opened
it subscribes a subject of its own (`subjects.transfer(id)`) and the gateway drives the
transfer there. Uploads: each chunk is a message whose reply is the acknowledgement (the
gateway keeps at most `window` unacknowledged). Downloads: each message the gateway sends
is a pull, answered by the next chunk. Both end with the sha256 of the bytes (headers in
`contracts.files`); a transfer idle for `idle` seconds is aborted, and an aborted upload
leaves nothing under the final name.
"""

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from llmsafespace.contracts import (
    Caller,
    DeleteFile,
    ErrorCode,
    ExecEventName,
    FileDeleted,
    FileEvent,
    FileInfo,
    FileListing,
    FileWritten,
    ListFiles,
    OpenDownload,
    OpenUpload,
    ServiceError,
    TransferOpened,
    new_execution_id,
    subjects,
)
from llmsafespace.contracts.files import (
    ABORT_HEADER,
    DONE_HEADER,
    ERROR_HEADER,
    SHA256_HEADER,
)
from llmsafespace.runtime import AgentClient, Download, DriverError, Upload
from llmsafespace.servicekit import Bus

from .agent_errors import agent_failures, service_error
from .agents import Agents
from .background import Background

log = structlog.get_logger()
T = TypeVar("T")


class Files:
    def __init__(
        self, agents: Agents, bus: Bus, connection: NatsClient, max_bytes: int, idle: float
    ) -> None:
        self._agents = agents
        self._bus = bus
        self._nc = connection
        self._max_bytes = max_bytes
        self._idle = idle
        self._background = Background()

    async def _call(
        self, caller: Caller, sandbox_id: str, call: Callable[[AgentClient], Awaitable[T]]
    ) -> T:
        _, client = await self._agents.client(caller, sandbox_id)
        with agent_failures(self._agents, sandbox_id):
            return await call(client)

    async def list(self, command: ListFiles) -> FileListing:
        listing = await self._call(
            command.caller,
            command.sandbox_id,
            lambda client: client.list_files(command.path, recursive=command.recursive),
        )
        return FileListing.model_validate(listing)

    async def delete(self, command: DeleteFile) -> FileDeleted:
        await self._call(
            command.caller,
            command.sandbox_id,
            lambda client: client.delete_file(command.path, recursive=command.recursive),
        )
        await self._event(
            command.caller, command.sandbox_id, ExecEventName.FILE_DELETED, command.path, None
        )
        return FileDeleted(path=command.path)

    async def open_upload(self, command: OpenUpload) -> TransferOpened:
        if command.size is not None and command.size > self._max_bytes:
            raise _too_large(self._max_bytes)
        upload = await self._call(
            command.caller,
            command.sandbox_id,
            lambda client: client.open_write(
                command.path, archive=command.archive, max_bytes=self._max_bytes
            ),
        )
        subject = subjects.transfer(secrets.token_hex(16))
        subscription = await self._nc.subscribe(subject)
        self._background.start(self._receive(subscription, upload, command))
        return TransferOpened(subject=subject, max_bytes=self._max_bytes)

    async def open_download(self, command: OpenDownload) -> TransferOpened:
        download = await self._call(
            command.caller,
            command.sandbox_id,
            lambda client: client.open_read(
                command.path,
                offset=command.offset,
                length=command.length,
                archive=command.archive,
            ),
        )
        subject = subjects.transfer(secrets.token_hex(16))
        subscription = await self._nc.subscribe(subject)
        self._background.start(self._send(subscription, download, command.sandbox_id))
        return TransferOpened(
            subject=subject,
            info=FileInfo.model_validate(download.info["info"]),
            etag=None if command.archive else download.info.get("etag"),
            offset=command.offset,
            length=download.info.get("length"),
        )

    async def _receive(
        self, subscription: Subscription, upload: Upload, command: OpenUpload
    ) -> None:
        digest, size = hashlib.sha256(), 0
        message: Msg | None = None
        try:
            while True:
                message = await subscription.next_msg(timeout=self._idle)
                headers = message.headers or {}
                if ABORT_HEADER in headers:
                    await upload.abort()
                    return
                if DONE_HEADER in headers:
                    break
                size += len(message.data)
                if size > self._max_bytes:
                    raise _too_large(self._max_bytes)
                digest.update(message.data)
                await upload.send(message.data)
                await message.respond(b"")
            expected = headers.get(SHA256_HEADER)
            if expected is not None and expected != digest.hexdigest():
                raise ServiceError(ErrorCode.INVALID_REQUEST, "sha256 mismatch: upload corrupted")
            written = await upload.finish(digest.hexdigest())
            reply = FileWritten(
                path=written["path"],
                size=size if command.archive else written["size"],
                created_at=datetime.now(UTC),
                sha256=digest.hexdigest(),
                files=written.get("files"),
            )
            await message.respond(reply.model_dump_json(by_alias=True).encode())
            await self._event(
                command.caller,
                command.sandbox_id,
                ExecEventName.FILE_WRITTEN,
                reply.path,
                reply.size,
                files=reply.files,
            )
        except TimeoutError:
            log.warning("upload_idle", subject=subscription.subject)
            await upload.abort()
        except (ServiceError, DriverError) as exc:
            await upload.abort()
            error = exc if isinstance(exc, ServiceError) else service_error(exc, command.sandbox_id)
            if message is not None:
                await self._fail(message, error)
        finally:
            await subscription.unsubscribe()

    async def _send(self, subscription: Subscription, download: Download, sandbox_id: str) -> None:
        sent = 0
        try:
            while True:
                message = await subscription.next_msg(timeout=self._idle)
                if ABORT_HEADER in (message.headers or {}):
                    break
                try:
                    chunk = await download.read()
                except DriverError as exc:
                    await self._fail(message, service_error(exc, sandbox_id))
                    break
                if chunk is None:
                    done = {DONE_HEADER: "1", SHA256_HEADER: download.sha256 or ""}
                    await self._nc.publish(message.reply, b"", headers=done)
                    break
                sent += len(chunk)
                await self._nc.publish(message.reply, chunk)
        except TimeoutError:
            log.warning("download_idle", subject=subscription.subject, sent=sent)
        finally:
            await download.abort()
            await subscription.unsubscribe()

    async def _fail(self, message: Msg, error: ServiceError) -> None:
        if message.reply:
            body = error.envelope().model_dump_json(exclude_none=True).encode()
            await self._nc.publish(message.reply, body, headers={ERROR_HEADER: "1"})

    async def _event(
        self,
        caller: Caller,
        sandbox_id: str,
        event: ExecEventName,
        path: str,
        size: int | None,
        files: int | None = None,
    ) -> None:
        """The audit trail's `file_written` / `file_deleted` (user, path, size)."""
        execution_id = new_execution_id()
        payload = FileEvent(
            execution_id=execution_id,
            sandbox_id=sandbox_id,
            user_id=caller.user_id,
            path=path,
            size=size,
            files=files,
        )
        await self._bus.event(subjects.exec_event(sandbox_id, execution_id, event), payload)

    async def drain(self) -> None:
        """Abort the open transfers (graceful shutdown)."""
        self._background.cancel()
        await self._background.wait()


def _too_large(limit: int) -> ServiceError:
    return ServiceError(
        ErrorCode.PAYLOAD_TOO_LARGE, f"files are limited to {limit} bytes", {"limit": limit}
    )
