"""File operations: list, delete, and chunked reads and writes with credit-based flow
control. A write lands in a temporary name beside its target and is renamed into place
only when complete and its sha256 matches; an archive is received whole into an unlinked
temp file, then unpacked all or nothing (`archives`)."""

from __future__ import annotations

import contextlib
import os
import queue
import stat
from collections.abc import Callable

from .frames import Reply
from .paths import FileError, Resolved, etag, failure, info, resolve
from .protocol import TYPE_CHECKING, Frame

if TYPE_CHECKING:
    from typing import Any

CHUNK = 256 * 1024
WINDOW = 8  # chunks the peer may send (or we may send) before a credit
MAX_LISTING = 5000

Send = Callable[[Frame, bytes], None]
Inbound = queue.SimpleQueue[tuple[Frame, bytes]]


def _flag(request: Frame, key: str) -> bool:
    return request.get(key) is True


def _count(request: Frame, key: str) -> int | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FileError("invalid_request", f"{key} must be a non-negative integer")
    return value


def list_files(request: Frame) -> Frame:
    target = resolve(request.get("path"))
    recursive = _flag(request, "recursive")
    try:
        fd = target.open_dir()
    except OSError as exc:
        raise failure(exc, target.path) from exc
    entries: list[dict[str, Any]] = []
    try:
        if recursive:
            for top, dirs, names, dir_fd in os.fwalk(".", dir_fd=fd):
                base = os.path.normpath(os.path.join(target.path, top))
                for name in sorted(dirs + names):
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    entries.append(info(f"{base}/{name}", name, st))
                if len(entries) >= MAX_LISTING:
                    break
        else:
            with os.scandir(fd) as scan:
                for entry in scan:
                    st = entry.stat(follow_symlinks=False)
                    entries.append(info(f"{target.path}/{entry.name}", entry.name, st))
    except OSError as exc:
        raise failure(exc, target.path) from exc
    finally:
        os.close(fd)
    entries.sort(key=lambda entry: entry["path"])
    return {
        "path": target.path,
        "files": entries[:MAX_LISTING],
        "truncated": len(entries) > MAX_LISTING,
    }


def delete(request: Frame) -> Frame:
    target = resolve(request.get("path"))
    parent = _open_parent(target)
    try:
        st = os.stat(target.name, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(target.name, dir_fd=parent)
        elif _flag(request, "recursive"):
            import shutil  # on first use, like archives: the idle agent stays small

            shutil.rmtree(target.name, dir_fd=parent)
        else:
            os.rmdir(target.name, dir_fd=parent)
    except OSError as exc:
        raise failure(exc, target.path) from exc
    finally:
        os.close(parent)
    return {"path": target.path}


def _open_parent(target: Resolved, *, create: bool = False) -> int:
    try:
        return target.open_parent(create=create)
    except OSError as exc:
        raise failure(exc, target.path) from exc


def _receive(inbound: Inbound) -> tuple[Frame, bytes]:
    """The peer's next frame for this transfer; an ``abort`` ends the transfer."""
    frame, body = inbound.get()
    if frame.get("abort") is True:
        raise FileError("cancelled", "the transfer was aborted")
    return frame, body


def write_file(request: Frame, send: Send, inbound: Inbound) -> Frame:
    """``ready`` (with credit), then data frames until ``end`` (with ``sha256``)."""
    target = resolve(request.get("path"))
    archive = _flag(request, "archive")
    limit = _count(request, "maxBytes")
    parent = -1
    temp = f".{target.name[:200]}.{os.urandom(6).hex()}.part"
    if archive:
        import tempfile  # on first use, like archives: the idle agent stays small

        from . import archives

        stream = tempfile.TemporaryFile(dir=archives.ARCHIVE_DIR)  # noqa: SIM115 - closed below
        fd = stream.fileno()
    else:
        parent = _open_parent(target, create=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(temp, flags, 0o644, dir_fd=parent)
        except OSError as exc:
            os.close(parent)
            raise failure(exc, target.path) from exc
    import hashlib  # on first use (OpenSSL): the idle agent stays small

    digest = hashlib.sha256()
    size = 0
    renamed = False
    try:
        send({"type": Reply.READY, "credit": WINDOW}, b"")
        while True:
            frame, body = _receive(inbound)
            if frame.get("end") is True:
                break
            size += len(body)
            if limit is not None and size > limit:
                raise FileError("payload_too_large", f"the file exceeds {limit} bytes")
            digest.update(body)
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
            send({"type": Reply.CREDIT, "credit": 1}, b"")
        expected = frame.get("sha256")
        if expected is not None and expected != digest.hexdigest():
            raise FileError("invalid_request", "sha256 mismatch: the upload was corrupted")
        if archive:
            stream.seek(0)
            unpacked = archives.unpack(stream, target)
            return {**unpacked, "sha256": digest.hexdigest(), "size": size}
        os.fsync(fd)
        os.rename(temp, target.name, src_dir_fd=parent, dst_dir_fd=parent)
        renamed = True
        st = os.fstat(fd)
        return {**info(target.path, target.name, st), "sha256": digest.hexdigest()}
    except OSError as exc:
        raise failure(exc, target.path) from exc
    finally:
        if archive:
            stream.close()
        else:
            os.close(fd)
            if not renamed:
                with contextlib.suppress(OSError):
                    os.unlink(temp, dir_fd=parent)
            os.close(parent)


def read_file(request: Frame, send: Send, inbound: Inbound) -> Frame:
    """``info``, then data frames while the reader grants credit, then the sha256."""
    target = resolve(request.get("path"))
    offset = _count(request, "offset") or 0
    length = _count(request, "length")
    if _flag(request, "archive"):
        from . import archives  # on first use: tarfile and co. stay out of the idle agent

        try:
            stream = archives.pack(target)
        except OSError as exc:
            raise failure(exc, target.path) from exc
        fd = os.dup(stream.fileno())
        stream.close()
    else:
        parent = _open_parent(target)
        try:
            fd = os.open(target.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except OSError as exc:
            raise failure(exc, target.path) from exc
        finally:
            os.close(parent)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FileError("invalid_request", f"{target.path} is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise FileError("invalid_request", f"{target.path} is not a regular file")
        offset = min(offset, st.st_size)
        remaining = st.st_size - offset if length is None else min(length, st.st_size - offset)
        entry = info(target.path, target.name, st)
        send({"type": Reply.INFO, "info": entry, "etag": etag(st), "length": remaining}, b"")
        import hashlib

        digest = hashlib.sha256()
        credit = WINDOW
        while remaining > 0:
            while credit <= 0:
                frame, _ = _receive(inbound)
                credit += int(frame.get("credit") or 0)
            data = os.pread(fd, min(CHUNK, remaining), offset)
            if not data:
                break
            digest.update(data)
            offset += len(data)
            remaining -= len(data)
            credit -= 1
            send({"type": Reply.DATA}, data)
        return {"sha256": digest.hexdigest()}
    except OSError as exc:
        raise failure(exc, target.path) from exc
    finally:
        os.close(fd)
