"""File operations: list, delete, and chunked reads and writes with credit-based flow
control. A write lands in a temporary name beside its target and is renamed into place
only when complete and its sha256 matches; an archive is unpacked as its chunks arrive,
all or nothing (`archives`), and a directory is packed straight into the chunks sent."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import queue
import stat
from collections.abc import Callable

from .frames import Reply
from .paths import FileError, Resolved, etag, failure, info, resolve
from .protocol import TYPE_CHECKING, Frame

if TYPE_CHECKING:
    from hashlib import _Hash
    from typing import Any

CHUNK = 256 * 1024
WINDOW = 8  # chunks the peer may send (or we may send) before a credit
MAX_LISTING_BYTES = 896 * 1024  # of a listing's entries as JSON (more: `truncated`)
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC

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
    """A directory's entries, as many as a `Listing` takes, in path order. They are
    taken by name; with ``recursive``, each directory's before those below it, the walk
    going down in name order (so a cut listing keeps the top of the tree first)."""
    target = resolve(request.get("path"))
    try:
        fd = target.open_dir()
    except OSError as exc:
        raise failure(exc, target.path) from exc
    listing = Listing()
    try:
        if _flag(request, "recursive"):
            for top, dirs, names, dir_fd in os.fwalk(".", dir_fd=fd):
                dirs.sort()  # the walk goes down in name order, not the directory's own
                base = os.path.normpath(os.path.join(target.path, top))
                if not listing.add_all(base, dirs + names, dir_fd):
                    break
        else:
            listing.add_all(target.path, os.listdir(fd), fd)
    except OSError as exc:
        raise failure(exc, target.path) from exc
    finally:
        os.close(fd)
    listing.entries.sort(key=lambda entry: entry["path"])
    return {"path": target.path, "files": listing.entries, "truncated": listing.truncated}


class Listing:
    """A listing's entries, while their JSON fits in ``MAX_LISTING_BYTES``. A listing
    reaches the caller as one NATS reply, and NATS carries at most 1 MiB in a message
    (the server's default ``max_payload``): bounded by 5,000 entries instead, 2,000 with
    names of 200 characters did not fit, and no reply was sent. The 128 KiB left is for
    the reply around the entries and for exec-svc's encoding of them, longer than this
    one by at most 11 bytes each (it adds ``"symlinkTarget":null`` and ends timestamps
    with Z, not +00:00); an entry takes over 180 bytes, so at most some 5,000 fit."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.truncated = False
        self._bytes = 0

    def add_all(self, base: str, names: list[str], dir_fd: int) -> bool:
        """Take the entries ``names`` of the directory ``dir_fd`` (at ``base``) in name
        order, while they fit; False once one did not (the listing is truncated)."""
        return all(self._add(f"{base}/{name}", name, dir_fd) for name in sorted(names))

    def _add(self, path: str, name: str, dir_fd: int) -> bool:
        entry = _entry(path, name, dir_fd)
        # As the frame carries it: UTF-8, a lone surrogate (a name that is not UTF-8) as
        # the three bytes of the U+FFFD it becomes.
        text = json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
        size = len(text.encode("utf-8", "surrogatepass")) + 1  # and its comma
        if self._bytes + size > MAX_LISTING_BYTES:
            self.truncated = True
            return False
        self.entries.append(entry)
        self._bytes += size
        return True


def _entry(path: str, name: str, dir_fd: int) -> dict[str, Any]:
    """The listing entry of ``name`` in the directory ``dir_fd`` (a symlink as itself)."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    link = os.readlink(name, dir_fd=dir_fd) if stat.S_ISLNK(st.st_mode) else None
    return info(path, name, st, link)


def delete(request: Frame) -> Frame:
    """Remove a file or (with ``recursive``) a directory; a symlink is removed itself,
    never what it points to, wherever that is."""
    target = resolve(request.get("path"), follow=False)
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


def _sha256() -> _Hash:
    import hashlib  # on first use (OpenSSL): the idle agent stays small

    return hashlib.sha256()


class Incoming:
    """A write's data frames as a stream: one credit is granted back for each frame taken
    (so at most a window of them waits here), the total is held to ``limit``, and the end
    (b"") is only read once the peer's ``end`` frame names the sha256 of what came."""

    def __init__(self, send: Send, inbound: Inbound, limit: int | None) -> None:
        self._send = send
        self._inbound = inbound
        self._limit = limit
        self._body = b""
        self._offset = 0
        self._ended = False
        self.digest = _sha256()
        self.size = 0

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes, from one frame; b"" at the end."""
        while self._offset >= len(self._body):
            if self._ended:
                return b""
            self._body, self._offset = self._take(), 0
        data = self._body[self._offset : self._offset + size]
        self._offset += len(data)
        return data

    def _take(self) -> bytes:
        frame, body = _receive(self._inbound)
        if frame.get("end") is True:
            expected = frame.get("sha256")
            if expected is not None and expected != self.digest.hexdigest():
                raise FileError("invalid_request", "sha256 mismatch: the upload was corrupted")
            self._ended = True
            return b""
        self.size += len(body)
        if self._limit is not None and self.size > self._limit:
            raise FileError("payload_too_large", f"the file exceeds {self._limit} bytes")
        self.digest.update(body)
        self._send({"type": Reply.CREDIT, "credit": 1}, b"")
        return body


class Outgoing:
    """A read's data frames as a stream: what is written goes out in frames of ``CHUNK``
    bytes, each spending one of the credits the reader grants (a window to start)."""

    def __init__(self, send: Send, inbound: Inbound) -> None:
        self._send = send
        self._inbound = inbound
        self._credit = WINDOW
        self._pending = bytearray()
        self.digest = _sha256()

    def write(self, data: bytes) -> int:
        self._pending += data
        while len(self._pending) >= CHUNK:
            self._frame(bytes(self._pending[:CHUNK]))
            del self._pending[:CHUNK]
        return len(data)

    def flush(self) -> None:
        """Send what is left, a last short frame."""
        if self._pending:
            self._frame(bytes(self._pending))
            self._pending.clear()

    def _frame(self, data: bytes) -> None:
        while self._credit <= 0:
            frame, _ = _receive(self._inbound)
            self._credit += int(frame.get("credit") or 0)
        self.digest.update(data)
        self._credit -= 1
        self._send({"type": Reply.DATA}, data)


def write_file(request: Frame, send: Send, inbound: Inbound) -> Frame:
    """``ready`` (with credit), then data frames until ``end`` (with ``sha256``)."""
    target = resolve(request.get("path"))
    incoming = Incoming(send, inbound, _count(request, "maxBytes"))
    if _flag(request, "archive"):
        from . import archives  # on first use: tarfile and co. stay out of the idle agent

        send({"type": Reply.READY, "credit": WINDOW}, b"")
        try:
            unpacked = archives.unpack(incoming, target)
        except OSError as exc:
            raise failure(exc, target.path) from exc
        return {**unpacked, "sha256": incoming.digest.hexdigest(), "size": incoming.size}
    parent = _open_parent(target, create=True)
    temp = f".{target.name[:200]}.{os.urandom(6).hex()}.part"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temp, flags, 0o644, dir_fd=parent)
    except OSError as exc:
        os.close(parent)
        raise failure(exc, target.path) from exc
    renamed = False
    try:
        send({"type": Reply.READY, "credit": WINDOW}, b"")
        while body := incoming.read(CHUNK):
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
        os.fsync(fd)
        os.rename(temp, target.name, src_dir_fd=parent, dst_dir_fd=parent)
        renamed = True
        st = os.fstat(fd)
        return {**info(target.path, target.name, st), "sha256": incoming.digest.hexdigest()}
    except OSError as exc:
        raise failure(exc, target.path) from exc
    finally:
        os.close(fd)
        if not renamed:
            with contextlib.suppress(OSError):
                os.unlink(temp, dir_fd=parent)
        os.close(parent)


def read_file(request: Frame, send: Send, inbound: Inbound) -> Frame:
    """``info``, then data frames while the reader grants credit, then the sha256. With
    ``archive``, the directory as a tar.gz: its length is not known until it has all
    been sent, so ``info`` gives none (and ``offset`` and ``length`` do not apply).
    Without it, only a regular file is read: anything else (a FIFO, a socket) is refused
    at once, as a directory is."""
    target = resolve(request.get("path"))
    if _flag(request, "archive"):
        return _read_archive(target, send, inbound)
    offset = _count(request, "offset") or 0
    length = _count(request, "length")
    parent = _open_parent(target)
    try:
        # O_NONBLOCK: opening a FIFO blocks until a writer comes (forever, holding this
        # thread and the caller's request); opened without waiting, it is refused below.
        fd = os.open(target.name, READ_FLAGS, dir_fd=parent)
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket
            raise FileError("invalid_request", f"{target.path} is not a regular file") from exc
        raise failure(exc, target.path) from exc
    finally:
        os.close(parent)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise FileError("invalid_request", f"{target.path} is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise FileError("invalid_request", f"{target.path} is not a regular file")
        os.set_blocking(fd, True)
        offset = min(offset, st.st_size)
        remaining = st.st_size - offset if length is None else min(length, st.st_size - offset)
        entry = info(target.path, target.name, st)
        send({"type": Reply.INFO, "info": entry, "etag": etag(st), "length": remaining}, b"")
        outgoing = Outgoing(send, inbound)
        while remaining > 0:
            data = os.pread(fd, min(CHUNK, remaining), offset)
            if not data:
                break
            offset += len(data)
            remaining -= len(data)
            outgoing.write(data)
        outgoing.flush()
        return {"sha256": outgoing.digest.hexdigest()}
    except OSError as exc:
        raise failure(exc, target.path) from exc
    finally:
        os.close(fd)


def _read_archive(target: Resolved, send: Send, inbound: Inbound) -> Frame:
    from . import archives  # on first use: tarfile and co. stay out of the idle agent

    try:
        top = target.open_dir()
    except OSError as exc:
        raise failure(exc, target.path) from exc
    try:
        entry = info(target.path, target.name, os.fstat(top))
        send({"type": Reply.INFO, "info": entry, "length": None}, b"")
        outgoing = Outgoing(send, inbound)
        archives.pack(top, outgoing)
        outgoing.flush()
        return {"sha256": outgoing.digest.hexdigest()}
    except OSError as exc:
        raise failure(exc, target.path) from exc
    finally:
        os.close(top)
