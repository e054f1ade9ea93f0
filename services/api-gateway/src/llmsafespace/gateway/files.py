"""`/api/v1/sandboxes/{id}/files…` and `/packages`: bodies streamed through, never held.

Uploads are read with `request.stream()` and sent as chunks on the transfer subject
exec-svc names (at most `window` unacknowledged); downloads pull chunks the same way and
leave as a `StreamingResponse`. Both carry a sha256 end to end."""

import asyncio
import hashlib
import mimetypes
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import structlog
from nats.aio.client import NO_RESPONDERS_STATUS
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import Header
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute

from llmsafespace.contracts import (
    Caller,
    DeleteFile,
    ErrorCode,
    ErrorEnvelope,
    FileDeleted,
    FileListing,
    FileWritten,
    ListFiles,
    OpenDownload,
    OpenUpload,
    ServiceError,
    TransferOpened,
    check_path,
    commands,
)
from llmsafespace.contracts.files import (
    ABORT_HEADER,
    DONE_HEADER,
    ERROR_HEADER,
    MAX_LISTING_BYTES,
    SHA256_HEADER,
)

from .auth import authenticated
from .errors import error_response
from .operation import BINARY, ApiRoute, Operation, RawBody, Ref
from .paths import sandbox_ref
from .state import state_of

log = structlog.get_logger()
CHECKSUM_HEADER = "x-content-sha256"  # optional: the client's sha256 of the upload
STEP_TIMEOUT = 60.0  # seconds one chunk may take: a side that stops answering ends it then
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_BEYOND_ANY_FILE = 10**18  # what a longer number means (int() refuses over 4,300 digits)
_TRUE = {"1", "true", "yes"}


def _directory_path(request: Request) -> str:
    """`?path=`, a directory (a listing's or an archive's): it may end in `/`."""
    return check_path(request.query_params.get("path", "/workspace"), directory=True)


def attachment(filename: str) -> str:
    """A `Content-Disposition` for any file name (RFC 6266): an ASCII `filename` with
    quotes, backslashes and control characters replaced, and the exact name as
    `filename*` (UTF-8, percent-encoded)."""
    plain = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    exact = quote(filename, safe="", errors="replace")
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{exact}"


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() in _TRUE


def _raise_if_error(message: Msg) -> None:
    """Raise what a reply on the transfer says went wrong: exec-svc's error envelope, or
    the server's "no responders" (its status, no body) when nobody serves the transfer's
    subject any more: the exec-svc instance that opened it is gone, and with it the
    transfer (an empty reply would otherwise pass for an empty chunk or acknowledgement,
    and the next message would get the same answer, forever)."""
    headers = message.headers or {}
    if headers.get(Header.STATUS) == NO_RESPONDERS_STATUS:
        raise ServiceError(
            ErrorCode.SERVICE_UNAVAILABLE, "the file transfer was lost: its service is gone"
        )
    if ERROR_HEADER in headers:
        envelope = ErrorEnvelope.model_validate_json(message.data)
        raise ServiceError.from_envelope(envelope)


class Inbox:
    """The gateway's end of one transfer: messages out to `subject`, replies in here."""

    def __init__(self, connection: NatsClient, subject: str) -> None:
        self._nc = connection
        self._subject = subject
        self._inbox = connection.new_inbox()
        self._subscription: Any = None

    async def __aenter__(self) -> "Inbox":
        self._subscription = await self._nc.subscribe(self._inbox)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._subscription.unsubscribe()

    async def send(self, data: bytes, headers: dict[str, str] | None = None) -> None:
        await self._nc.publish(self._subject, data, reply=self._inbox, headers=headers)

    async def reply(self) -> Msg:
        try:
            message: Msg = await self._subscription.next_msg(timeout=STEP_TIMEOUT)
        except TimeoutError as exc:
            raise ServiceError(ErrorCode.TIMEOUT, "the file transfer stalled") from exc
        _raise_if_error(message)
        return message

    async def abort(self) -> None:
        await self._nc.publish(self._subject, b"", headers={ABORT_HEADER: "1"})


async def _upload(request: Request, caller: Caller, path: str, archive: bool) -> FileWritten:
    ref = sandbox_ref(request, caller)
    declared = request.headers.get("content-length")
    size = int(declared) if declared and declared.isdigit() else None
    opened = await state_of(request)["bus"].request(
        commands.EXEC_FILES_UPLOAD,
        OpenUpload(caller=caller, sandbox_id=ref.sandbox_id, path=path, size=size, archive=archive),
    )
    digest = hashlib.sha256()
    async with Inbox(state_of(request)["nats"], opened.subject) as inbox:
        unacknowledged = 0
        done = False
        try:
            async for piece in _chunks(request.stream(), opened.chunk_bytes):
                digest.update(piece)
                await inbox.send(piece)
                unacknowledged += 1
                if unacknowledged >= opened.window:
                    await inbox.reply()
                    unacknowledged -= 1
            for _ in range(unacknowledged):
                await inbox.reply()
            expected = request.headers.get(CHECKSUM_HEADER, digest.hexdigest()).lower()
            await inbox.send(b"", headers={DONE_HEADER: "1", SHA256_HEADER: expected})
            done = True
            final = await inbox.reply()
        except BaseException:
            if not done:
                await inbox.abort()
            raise
    return FileWritten.model_validate_json(final.data)


async def _chunks(stream: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    """Re-cut the body into chunks of `size` bytes (the last may be shorter)."""
    buffer = bytearray()
    async for piece in stream:
        buffer += piece
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _position(digits: str) -> int | None:
    """A range's number (None where it is absent); one past any file's size if longer."""
    if digits == "":
        return None
    return int(digits) if len(digits) <= 18 else _BEYOND_ANY_FILE


@dataclass(frozen=True)
class ByteRange:
    """One `bytes=` range as asked: from `start`, `length` bytes (None: to the end), or
    the last `suffix` bytes (RFC 9110 14.1.2)."""

    start: int = 0
    length: int | None = None
    suffix: int | None = None

    @classmethod
    def parse(cls, header: str | None) -> "ByteRange | None":
        """The range a `Range` header asks for; None without one."""
        if not header:
            return None
        match = _RANGE.fullmatch(header.strip())
        if match is None or match.groups() == ("", ""):
            raise ServiceError(
                ErrorCode.INVALID_REQUEST, "only one bytes=start-end range is supported"
            )
        start, end = (_position(group) for group in match.groups())
        if start is None:
            return cls(suffix=end)
        if end is None:
            return cls(start)
        if end < start:
            raise ServiceError(ErrorCode.INVALID_REQUEST, "the range ends before it starts")
        return cls(start, end - start + 1)

    def within(self, size: int) -> "ByteRange":
        """A suffix range as a start in a file of `size` bytes (`-0` starts at the end:
        nothing in it, so unsatisfiable)."""
        if self.suffix is None:
            return self
        return ByteRange(max(0, size - self.suffix) if self.suffix else size)


def _matches(if_none_match: str | None, etag: str | None) -> bool:
    """Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 13.1.2)."""
    if not if_none_match or not etag:
        return False
    if if_none_match.strip() == "*":
        return True
    own = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == own for tag in if_none_match.split(","))


async def _download(request: Request, caller: Caller, path: str, archive: bool) -> Response:
    """The file (or the directory as tar.gz). A `Range` answers 206 with those bytes, or
    416 (the error envelope, `Content-Range: bytes */size`) when none of the file is in
    it; an empty file has no range to send, so it is answered whole (200, no body). An
    `If-None-Match` naming the file's ETag answers 304 with no body."""
    ref = sandbox_ref(request, caller)
    nats = state_of(request)["nats"]
    wanted = None if archive else ByteRange.parse(request.headers.get("range"))
    if wanted is not None and wanted.suffix is not None:  # needs the size first
        probe = await _open(request, caller, ref.sandbox_id, path, 0, 0, False)
        await Inbox(nats, probe.subject).abort()
        wanted = wanted.within(probe.info.size if probe.info else 0)
    start, length = (wanted.start, wanted.length) if wanted else (0, None)
    opened = await _open(request, caller, ref.sandbox_id, path, start, length, archive)
    info = opened.info
    assert info is not None
    headers = {"accept-ranges": "bytes"} if not archive else {}
    if opened.etag:
        headers["etag"] = opened.etag
    body_length = opened.length or 0
    if _matches(request.headers.get("if-none-match"), opened.etag):
        await Inbox(nats, opened.subject).abort()
        return Response(status_code=304, headers=headers)
    status = 200
    if wanted is not None and info.size > 0:
        if body_length == 0:
            await Inbox(nats, opened.subject).abort()
            response = error_response(
                ServiceError(
                    ErrorCode.RANGE_NOT_SATISFIABLE,
                    f"the range is not within the file's {info.size} bytes",
                    {"size": info.size},
                )
            )
            response.headers.update({**headers, "content-range": f"bytes */{info.size}"})
            return response
        status = 206
        last = opened.offset + body_length - 1
        headers["content-range"] = f"bytes {opened.offset}-{last}/{info.size}"
    if not archive:
        headers["content-length"] = str(body_length)
        media = mimetypes.guess_type(info.name)[0] or "application/octet-stream"
    else:
        media = "application/gzip"
        headers["content-disposition"] = attachment(f"{info.name or 'archive'}.tar.gz")
    if request.method == "HEAD":
        await Inbox(nats, opened.subject).abort()
        return Response(status_code=status, headers=headers, media_type=media)
    stream = _pull(nats, opened)
    return StreamingResponse(stream, status_code=status, headers=headers, media_type=media)


async def _open(
    request: Request,
    caller: Caller,
    sandbox_id: str,
    path: str,
    offset: int,
    length: int | None,
    archive: bool,
) -> TransferOpened:
    command = OpenDownload(
        caller=caller,
        sandbox_id=sandbox_id,
        path=path,
        offset=offset,
        length=length,
        archive=archive,
    )
    opened: TransferOpened = await state_of(request)["bus"].request(
        commands.EXEC_FILES_DOWNLOAD, command
    )
    return opened


async def _pull(connection: NatsClient, opened: TransferOpened) -> AsyncIterator[bytes]:
    """The chunks, `window` pulls ahead; the sha256 is checked at the end (a mismatch or
    a failure mid-stream breaks the connection: the status line is gone already)."""
    digest = hashlib.sha256()
    finished = False
    async with Inbox(connection, opened.subject) as inbox:
        try:
            for _ in range(opened.window):
                await inbox.send(b"")
            while True:
                message = await inbox.reply()
                if DONE_HEADER in (message.headers or {}):
                    finished = True
                    if (message.headers or {}).get(SHA256_HEADER) != digest.hexdigest():
                        raise ServiceError(ErrorCode.INTERNAL_ERROR, "download checksum mismatch")
                    break
                digest.update(message.data)
                await inbox.send(b"")
                yield message.data
        finally:
            if not finished:
                await asyncio.shield(inbox.abort())


@authenticated
async def list_files(request: Request, caller: Caller) -> Response:
    ref = sandbox_ref(request, caller)
    command = ListFiles(
        caller=caller,
        sandbox_id=ref.sandbox_id,
        path=_directory_path(request),
        recursive=_flag(request, "recursive"),
    )
    listing = await state_of(request)["bus"].request(commands.EXEC_FILES_LIST, command)
    return JSONResponse(listing.wire())


def _file_path(request: Request) -> str:
    return check_path("/" + request.path_params["path"])


@authenticated
async def read_file(request: Request, caller: Caller) -> Response:
    return await _download(request, caller, _file_path(request), archive=False)


@authenticated
async def write_file(request: Request, caller: Caller) -> Response:
    written = await _upload(request, caller, _file_path(request), archive=False)
    return JSONResponse(written.wire(), status_code=201)


@authenticated
async def delete_file(request: Request, caller: Caller) -> Response:
    ref = sandbox_ref(request, caller)
    command = DeleteFile(
        caller=caller,
        sandbox_id=ref.sandbox_id,
        path=_file_path(request),
        recursive=_flag(request, "recursive"),
    )
    deleted = await state_of(request)["bus"].request(commands.EXEC_FILES_DELETE, command)
    return JSONResponse(deleted.wire())


@authenticated
async def read_archive(request: Request, caller: Caller) -> Response:
    path = _directory_path(request)
    return await _download(request, caller, path, archive=True)


@authenticated
async def write_archive(request: Request, caller: Caller) -> Response:
    path = _directory_path(request)
    written = await _upload(request, caller, path, archive=True)
    return JSONResponse(written.wire(), status_code=201)


_ARCHIVE_PATH = {"name": "path", "in": "query", "required": False, "schema": {"type": "string"}}
_FILE_TYPES = ("application/octet-stream", "*/*")  # by the file's name, else octet-stream
_TAR_GZ = "application/gzip"

ROUTES: list[BaseRoute] = [
    ApiRoute(
        "GET",
        "/sandboxes/{sandbox_id}/files",
        list_files,
        Operation(
            "List a directory in the sandbox",
            "files",
            Ref(FileListing),
            query=ListFiles,
            query_fields=("path", "recursive"),
            errors=(404, 409),
            description="`path` (default /workspace) must be inside /workspace or /tmp"
            " (`400 invalid_path` otherwise, also for symlinks that lead out); it may end"
            f" with `/`. The entries, in path order, take at most {MAX_LISTING_BYTES:,} bytes"
            " of JSON (the listing is one message on the bus): `truncated: true` says there"
            " were more, and the first by name were kept (with `recursive`, each directory's"
            " entries before those below it, its subdirectories in name order). List a"
            " subdirectory, or download it as an archive, for the rest.",
        ),
    ),
    ApiRoute(
        "GET",
        "/sandboxes/{sandbox_id}/files/archive",
        read_archive,
        Operation(
            "Download a directory as tar.gz (streamed)",
            "files",
            BINARY,
            media=_TAR_GZ,
            errors=(404, 409),
            description="`path` (default /workspace) as a tar.gz, its `Content-Disposition`"
            " naming it `<directory>.tar.gz`. Symlinks are carried as links.",
            extra_params=(_ARCHIVE_PATH,),
        ),
    ),
    ApiRoute(
        "POST",
        "/sandboxes/{sandbox_id}/files/archive",
        write_archive,
        Operation(
            "Upload a tar.gz and unpack it into a directory",
            "files",
            Ref(FileWritten),
            201,
            body=RawBody(
                (_TAR_GZ, "application/octet-stream"),
                "A tar.gz, streamed (a tar that is not gzip-compressed is refused as corrupt);"
                " its `Content-Type` is not checked.",
            ),
            errors=(404, 409, 413, 507),
            description="All or nothing: the archive is unpacked into a staging directory and"
            " moved into place only when every member unpacked. Regular files, directories,"
            " hard links to a file unpacked before them, and symlinks, carried as links"
            " wherever they point (their targets as written); members with `..`, absolute"
            " paths or NUL bytes, a member that would be written through a link (`link/file`"
            " after `link`), and device files are refused (`400`), as is a corrupt or"
            " truncated archive; either way the directory is left unchanged.",
            extra_params=(_ARCHIVE_PATH,),
        ),
    ),
    ApiRoute(
        "GET",
        "/sandboxes/{sandbox_id}/files/{path:path}",
        read_file,
        Operation(
            "Download a file (streamed; Range, ETag)",
            "files",
            BINARY,
            media=_FILE_TYPES,
            other_successes=((206, BINARY), (304, None)),
            errors=(404, 409, 416),
            description="`{path}` is the absolute path without its leading slash"
            " (`files/workspace/a.csv` is /workspace/a.csv). The body is the file's bytes, its"
            " `Content-Type` guessed from its name (`text/plain` for `.txt`), else"
            " `application/octet-stream`. A `Range: bytes=a-b` header"
            " (or `a-`, or the suffix `-n`) answers 206 with those bytes, or"
            " `416 range_not_satisfiable` with `Content-Range: bytes */size` when none of"
            " the file is in it; an empty file is answered whole (200) whatever the range."
            " `If-None-Match` with the `ETag` answered before: 304, no body.",
        ),
    ),
    ApiRoute(
        "PUT",
        "/sandboxes/{sandbox_id}/files/{path:path}",
        write_file,
        Operation(
            "Upload a file (the raw body, streamed; parent directories created)",
            "files",
            Ref(FileWritten),
            201,
            body=RawBody(
                ("application/octet-stream",),
                "The file's bytes, whatever the `Content-Type` (an empty body: an empty file).",
            ),
            errors=(404, 409, 413, 507),
            description="Written under a temporary name and renamed into place when complete."
            " An optional `X-Content-Sha256` header is checked against the bytes received.",
        ),
    ),
    ApiRoute(
        "DELETE",
        "/sandboxes/{sandbox_id}/files/{path:path}",
        delete_file,
        Operation(
            "Delete a file (a directory with `?recursive=true`)",
            "files",
            Ref(FileDeleted),
            errors=(404, 409),
            extra_params=(
                {
                    "name": "recursive",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "boolean"},
                },
            ),
        ),
    ),
]
