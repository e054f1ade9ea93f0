"""tar.gz archives of sandbox directories, streamed both ways: packed straight into the
outgoing chunks for downloads, unpacked member by member as an upload's chunks arrive.
Nothing is staged whole, so an archive may be larger than the sandbox's memory-backed
`/tmp` (or any of its filesystems) and costs it a few chunks of memory at most.

An upload is all or nothing. Its members are unpacked into a fresh staging directory
inside the target, every path opened one component at a time without following symlinks;
only when the whole archive unpacked (and its gzip trailer checked) are the staged entries
renamed into place (merged into directories that already exist, after checking that
nothing conflicts). A corrupt or truncated archive, a refused member, a full disk or a
cancelled transfer leave the target as it was. Refused: members with `..`, absolute paths
or NUL bytes, hard links to anything but a file unpacked before them, and anything but
files, directories and links.

Symlinks go both ways as symlinks, their targets verbatim, wherever they lead (a venv's
`bin/python` points to `/usr/bin`): the sandbox's user can make any link anyway, so what
one points to guards nothing. What does is that nothing is ever written through one:
each member's path is opened a component at a time with O_NOFOLLOW, so a later member
under a link's name (`link/file`, or `link` itself) is refused, not followed, and the
staged entries are renamed into place, which replaces a link rather than following it."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import tarfile
import zlib
from typing import IO, Any, Protocol, cast

from .paths import DIR_FLAGS, FileError, Resolved, info

CHUNK = 256 * 1024
STAGING_PREFIX = ".unpacking-"
GZIP = 16 + zlib.MAX_WBITS  # zlib's wbits for a gzip header and trailer
_CORRUPT = (tarfile.TarError, EOFError, zlib.error)


class Source(Protocol):
    """Where an upload's tar.gz comes from: up to ``size`` bytes a read, b"" at the end."""

    def read(self, size: int, /) -> bytes: ...


class Sink(Protocol):
    """Where a download's tar.gz goes."""

    def write(self, data: bytes, /) -> object: ...


def unpack(stream: Source, target: Resolved) -> dict[str, Any]:
    """Unpack the tar.gz read from ``stream`` into the directory ``target`` (created if
    missing): what it now is, with ``files``, the number of entries unpacked."""
    try:
        top = target.open_dir()
        created = False
    except FileNotFoundError:
        top = target.open_dir(create=True)
        created = True
    staging = f"{STAGING_PREFIX}{secrets.token_hex(8)}"
    try:
        os.mkdir(staging, 0o700, dir_fd=top)
        try:
            count = _extract(stream, Resolved(target.root, (*target.parts, staging)))
            source = os.open(staging, DIR_FLAGS, dir_fd=top)
            try:
                _check_merge(source, top, "")
                _merge(source, top)
            finally:
                os.close(source)
            os.rmdir(staging, dir_fd=top)
        except BaseException:
            with contextlib.suppress(OSError):
                shutil.rmtree(staging, dir_fd=top)
            if created:
                _remove_empty(target)
            raise
        return {**info(target.path, target.name, os.fstat(top)), "files": count}
    except _CORRUPT as exc:
        raise FileError("invalid_request", f"the archive is corrupt or truncated: {exc}") from exc
    finally:
        os.close(top)


def _remove_empty(target: Resolved) -> None:
    """Remove the directory an upload created, unless something else was put in it."""
    with contextlib.suppress(OSError, FileError):
        parent = target.open_parent()
        try:
            os.rmdir(target.name, dir_fd=parent)
        finally:
            os.close(parent)


def _member_parts(name: str) -> tuple[str, ...]:
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if name.startswith("/") or ".." in parts or "\x00" in name:
        raise FileError("invalid_path", f"archive member {name!r} escapes")
    return parts


def _symlink(member: tarfile.TarInfo, entry: Resolved) -> None:
    """The symlink ``member`` at ``entry``, its target as the archive gives it."""
    if not member.linkname:
        raise FileError("invalid_request", f"archive member {member.name!r}: an empty link")
    parent = entry.open_parent(create=True)
    try:
        os.symlink(member.linkname, entry.name, dir_fd=parent)
    finally:
        os.close(parent)


class _Inflated:
    """The tar inside the gzip ``stream``, inflated a bounded block at a time (a chunk of
    zeros would otherwise inflate a thousandfold in memory). `tarfile`'s own stream mode
    stops at the tar's end marker and never reads the gzip trailer: `finish` reads to the
    end, so a truncated stream or a bad checksum is refused. Concatenated gzip members
    are one stream, as gzip reads them."""

    def __init__(self, stream: Source) -> None:
        self._stream = stream
        self._inflate = zlib.decompressobj(GZIP)
        self._input = b""

    def read(self, size: int) -> bytes:
        while True:
            if not self._input:
                self._input = self._stream.read(CHUNK)
                if not self._input:
                    if not self._inflate.eof:
                        raise EOFError("the gzip stream ends early")
                    return b""
            if self._inflate.eof:  # another member follows
                self._inflate = zlib.decompressobj(GZIP)
            data = self._inflate.decompress(self._input, size)
            ended = self._inflate.eof
            self._input = self._inflate.unused_data if ended else self._inflate.unconsumed_tail
            if data:
                return data

    def finish(self) -> None:
        """Read what follows the tar's end marker (its padding) up to the gzip trailer."""
        while self.read(CHUNK):
            pass


def _extract(stream: Source, staging: Resolved) -> int:
    count = 0
    inflated = _Inflated(stream)
    # Stream mode ("r|"): members in order, each file read once, nothing seeked or kept.
    with tarfile.open(fileobj=cast(IO[bytes], inflated), mode="r|", bufsize=CHUNK) as archive:
        for member in archive:
            parts = _member_parts(member.name)
            if not parts:
                continue
            entry = Resolved(staging.root, (*staging.parts, *parts))
            if member.isdir():
                os.close(staging.open_dir(entry.parts, create=True))
            elif member.isfile():
                _extract_file(archive, member, entry)
            elif member.issym():
                _symlink(member, entry)
            elif member.islnk():
                _hard_link(member, staging, entry)
            else:
                raise FileError("invalid_request", f"archive member {member.name!r} is not a file")
            count += 1
    inflated.finish()
    return count


def _extract_file(archive: tarfile.TarFile, member: tarfile.TarInfo, entry: Resolved) -> None:
    parent = entry.open_parent(create=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(entry.name, flags, (member.mode & 0o755) | 0o600, dir_fd=parent)
    finally:
        os.close(parent)
    try:
        source = archive.extractfile(member)
        assert source is not None
        while block := source.read(CHUNK):
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _hard_link(member: tarfile.TarInfo, staging: Resolved, entry: Resolved) -> None:
    """A hard link to a file unpacked before it, from this same archive."""
    source = Resolved(staging.root, (*staging.parts, *_member_parts(member.linkname)))
    if len(source.parts) == len(staging.parts):
        raise FileError("invalid_path", f"archive member {member.name!r} links outside")
    source_dir = source.open_parent()
    try:
        st = os.stat(source.name, dir_fd=source_dir, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            raise FileError("invalid_request", f"archive member {member.name!r}: bad link")
        parent = entry.open_parent(create=True)
        try:
            os.link(
                source.name,
                entry.name,
                src_dir_fd=source_dir,
                dst_dir_fd=parent,
                follow_symlinks=False,
            )
        finally:
            os.close(parent)
    except FileNotFoundError as exc:
        raise FileError(
            "invalid_request", f"archive member {member.name!r} links to a missing file"
        ) from exc
    finally:
        os.close(source_dir)


def _is_dir(name: str, dir_fd: int) -> bool | None:
    """Whether ``name`` is a real directory (not a symlink to one); None if absent."""
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return None


def _check_merge(source: int, destination: int, where: str) -> None:
    """Refuse, before anything moves, an entry whose kind clashes with what is in place."""
    for name in os.listdir(source):
        staged = _is_dir(name, source)
        present = _is_dir(name, destination)
        if present is None or not (staged or present):
            continue  # new, or a file replacing a file
        if staged != present:
            kind = "a directory" if staged else "a file"
            raise FileError("conflict", f"{where}{name} is {kind} in the archive but not here")
        inner_source = os.open(name, DIR_FLAGS, dir_fd=source)
        try:
            inner = os.open(name, DIR_FLAGS, dir_fd=destination)
            try:
                _check_merge(inner_source, inner, f"{where}{name}/")
            finally:
                os.close(inner)
        finally:
            os.close(inner_source)


def _merge(source: int, destination: int) -> None:
    """Rename every staged entry into place; directories already there are merged into."""
    for name in os.listdir(source):
        if _is_dir(name, source) and _is_dir(name, destination):
            inner_source = os.open(name, DIR_FLAGS, dir_fd=source)
            try:
                inner = os.open(name, DIR_FLAGS, dir_fd=destination)
                try:
                    _merge(inner_source, inner)
                finally:
                    os.close(inner)
            finally:
                os.close(inner_source)
            os.rmdir(name, dir_fd=source)  # emptied into the one in place
        else:
            os.rename(name, name, src_dir_fd=source, dst_dir_fd=destination)


class _Outlet:
    """`pack`'s way to ``sink``, closed on a failure: tarfile flushes the rest of its
    stream when it is closed, even after an error (and from ``__del__``), and that must
    not reach the reader as more of the archive."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.closed = False

    def write(self, data: bytes) -> int:
        if not self.closed:
            self.sink.write(data)
        return len(data)


def pack(top: int, sink: Sink) -> None:
    """Write the directory open as ``top`` to ``sink`` as a tar.gz, as it is walked:
    directories, files and symlinks (as links, never followed); sockets and FIFOs are
    left out."""
    outlet = _Outlet(sink)
    # Stream mode ("w|gz"): written in order, never seeked, so nothing is staged.
    with tarfile.open(fileobj=cast(IO[bytes], outlet), mode="w|gz", bufsize=CHUNK) as archive:
        try:
            for base, dirs, names, dir_fd in os.fwalk(".", dir_fd=top):
                for name in sorted(dirs + names):
                    member = os.path.normpath(os.path.join(base, name))
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    entry = tarfile.TarInfo(member)
                    entry.mtime, entry.mode = int(st.st_mtime), st.st_mode & 0o7777
                    if stat.S_ISDIR(st.st_mode):
                        entry.type = tarfile.DIRTYPE
                        archive.addfile(entry)
                    elif stat.S_ISLNK(st.st_mode):
                        entry.type = tarfile.SYMTYPE
                        entry.linkname = os.readlink(name, dir_fd=dir_fd)
                        archive.addfile(entry)
                    elif stat.S_ISREG(st.st_mode):
                        # Never blocking, and checked again: a file swapped for a FIFO
                        # since the stat would hold this thread until a writer came.
                        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                        fd = os.open(name, flags, dir_fd=dir_fd)
                        with os.fdopen(fd, "rb") as source:
                            opened = os.fstat(fd)
                            if stat.S_ISREG(opened.st_mode):  # else left out, as FIFOs are
                                entry.size = opened.st_size
                                archive.addfile(entry, source)
        except BaseException:
            outlet.closed = True
            raise
